"""Admin forms. They only collect input: the services validate it and act (workspaces.admin maps their errors)."""

from django import forms
from django.contrib.admin.widgets import ForeignKeyRawIdWidget

from platform_site.errors import CarrelError
from workspaces.models import FirewallRule, Workspace, WorkspaceState

TERMINATE_CONFIRMATION = "DELETE"


class CarrelErrorsMixin:
    def add_carrel_error(self, error: CarrelError) -> None:
        """A service's refusal as form errors: its field errors on the fields the form has, the rest on top."""
        placed = False
        for field, messages in (error.fields or {}).items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message if target else f"{field}: {message}")
                placed = True
        if not placed or error.code != "VALIDATION_ERROR":
            self.add_error(None, " ".join(part for part in (error.message, error.details) if part))


class FirewallRuleAddForm(CarrelErrorsMixin, forms.Form):
    """One ingress rule for `services.firewall_add` (the same checks as the API, including world-open SSH)."""

    workspace = forms.ModelChoiceField(queryset=Workspace.objects.exclude(state=WorkspaceState.TERMINATED))
    protocol = forms.ChoiceField(choices=FirewallRule.Protocol.choices, initial=FirewallRule.Protocol.TCP)
    from_port = forms.IntegerField()
    to_port = forms.IntegerField(required=False, help_text="Empty: the same as the from port.")
    cidr = forms.CharField(max_length=64, label="CIDR", help_text="For example 203.0.113.7/32.")
    description = forms.CharField(max_length=200, required=False)
    allow_world_ssh = forms.BooleanField(
        required=False,
        label="Allow world-open SSH",
        help_text="Needed when the workspace's rules together would open SSH to more than a /4 of addresses.",
    )

    def __init__(self, *args, admin_site, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        relation = FirewallRule._meta.get_field("workspace").remote_field
        self.fields["workspace"].widget = ForeignKeyRawIdWidget(relation, admin_site)

    def rule(self) -> dict:
        data = self.cleaned_data
        return {
            "protocol": data["protocol"],
            "from_port": data["from_port"],
            "to_port": data["to_port"] if data.get("to_port") is not None else data["from_port"],
            "cidr": data["cidr"],
            "description": data["description"],
        }


class TerminateConfirmationForm(forms.Form):
    confirm = forms.CharField(
        label=f'Type "{TERMINATE_CONFIRMATION}" to confirm',
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != TERMINATE_CONFIRMATION:
            raise forms.ValidationError(f'Type "{TERMINATE_CONFIRMATION}" (in capitals) to terminate.')
        return value
