"""A local stand-in for Vonage's REST API, with a phone simulator. Never used in production."""

from sandbox.app import create_sandbox_app
from sandbox.server import SandboxServer, start_sandbox
from sandbox.signing import sign_params

__all__ = ["SandboxServer", "create_sandbox_app", "sign_params", "start_sandbox"]
