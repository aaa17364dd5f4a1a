"""The Prism-compatible workspace API (/instances, /jobs, /logs, /profiles), by concern. Views are thin:
services do the work, serializers (workspaces.serializers) shape the bodies."""

from workspaces.api.firewall import FirewallView
from workspaces.api.instances import (
    ConnectView,
    ExtendView,
    HibernationStatusView,
    InstanceDetailView,
    InstanceHibernateView,
    InstanceLaunchView,
    InstanceListView,
    InstanceResumeView,
    InstanceStartView,
    InstanceStopView,
    InstanceTerminateView,
    SysinfoView,
    UsageView,
)
from workspaces.api.logs import JobDetailView, LogListView, LogTypesView, LogView
from workspaces.api.profiles import ProfileCurrentView, ProfileListView, ProfileSwitchView

__all__ = [
    "ConnectView",
    "ExtendView",
    "FirewallView",
    "HibernationStatusView",
    "InstanceDetailView",
    "InstanceHibernateView",
    "InstanceLaunchView",
    "InstanceListView",
    "InstanceResumeView",
    "InstanceStartView",
    "InstanceStopView",
    "InstanceTerminateView",
    "JobDetailView",
    "LogListView",
    "LogTypesView",
    "LogView",
    "ProfileCurrentView",
    "ProfileListView",
    "ProfileSwitchView",
    "SysinfoView",
    "UsageView",
]
