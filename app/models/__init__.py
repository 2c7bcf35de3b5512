"""Every model, importable from one place (Alembic and the app load them all here)."""

from app.models.accounts import (
    ROLES,
    SETTINGS_ROLES,
    Business,
    Invitation,
    PendingSignUp,
    User,
    UserSession,
)
from app.models.alerts import DailyAlert
from app.models.booking import (
    APPOINTMENT_STATES,
    AUTO_EVENTS,
    Appointment,
    AutoMessageSetting,
)
from app.models.clients import (
    SOURCES,
    Client,
    ClientEmail,
    ClientImport,
    ClientNote,
    ClientPhone,
    ClientTag,
    OptOut,
)
from app.models.inbound import InboundPart
from app.models.inbox import Conversation, ConversationRead
from app.models.messages import (
    Message,
    MessagePart,
    TextBalance,
    TextLedgerEntry,
)
from app.models.push import PushSubscription
from app.models.scheduling import SCHEDULED_SEND_STATES, ScheduledSend
from app.models.staff_alerts import StaffAlert, StaffAlertChoice
from app.models.texting import (
    SMS_SETTINGS,
    DedicatedNumber,
    Notification,
    Verification,
)

__all__ = [
    "APPOINTMENT_STATES",
    "AUTO_EVENTS",
    "Appointment",
    "AutoMessageSetting",
    "ROLES",
    "SETTINGS_ROLES",
    "SCHEDULED_SEND_STATES",
    "SMS_SETTINGS",
    "StaffAlert",
    "StaffAlertChoice",
    "SOURCES",
    "Business",
    "Client",
    "InboundPart",
    "ClientEmail",
    "ClientImport",
    "ClientNote",
    "ClientPhone",
    "ClientTag",
    "Conversation",
    "DailyAlert",
    "ConversationRead",
    "DedicatedNumber",
    "Invitation",
    "Message",
    "MessagePart",
    "Notification",
    "OptOut",
    "PendingSignUp",
    "PushSubscription",
    "ScheduledSend",
    "TextBalance",
    "TextLedgerEntry",
    "User",
    "UserSession",
    "Verification",
]
