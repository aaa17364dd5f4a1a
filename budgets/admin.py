"""Django admin for money. Pools and allocations are edited through forms and actions that call
`budgets.services.pools` and `budgets.services.allocations`, as the API does, so the pool's row lock, the money
invariants, the validation and the audit trail apply here too; a refusal shows on the form. The ledger, reservations,
member caps and alerts are written only by services and are read-only here."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template import engines
from django.template.response import TemplateResponse

from budgets.models import (
    Allocation,
    BudgetAlert,
    BudgetPool,
    CostDay,
    CostEntry,
    MemberCap,
    OpenSpendSum,
    Price,
    Reservation,
)
from budgets.services import allocations as allocation_services
from budgets.services import pools as services
from platform_site.admin import ReadOnlyAdmin
from platform_site.errors import CarrelError


@admin.register(CostEntry)
class CostEntryAdmin(ReadOnlyAdmin):
    list_display = ["day", "workspace", "project", "kind", "item", "start", "end", "quantity", "unit", "rate", "amount"]
    list_filter = ["kind", "organization"]
    search_fields = ["workspace__name", "workspace__id", "project__name", "item"]
    list_select_related = ["workspace", "project"]
    date_hierarchy = "day"


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["region", "product", "variant", "dimension", "price", "free_units", "as_of", "source"]
    list_filter = ["product", "region", "source"]
    search_fields = ["variant", "region"]


# --- Forms whose validation ends in the service ----------------------------------------------------------------


class ServiceForm(forms.ModelForm):
    """A ModelForm that, once its own checks pass, makes the change through a service (`apply`) and shows the
    service's refusal as form errors. The admin's view runs in a transaction, and the service's own atomic block
    rolls a refused change back; the admin then saves nothing itself (`save` returns what the service wrote)."""

    actor: Any = None  # the request's user, set by the ModelAdmin's get_form
    # The service's field names that are named differently on the form.
    field_names: dict[str, str] = {}

    def apply(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound or self._errors:
            return
        try:
            self.instance = self.apply()
        except CarrelError as error:
            placed = False
            for name, problems in (error.fields or {}).items():
                name = self.field_names.get(name, name)
                if name in self.fields:
                    self._errors.setdefault(name, self.error_class()).extend(problems)
                    placed = True
            text = " ".join(part for part in [error.message, error.details] if part)
            self._errors.setdefault("__all__", self.error_class(error_class="nonfield")).append(
                text if not placed else f"{text} (see the fields below)"
            )
            self.cleaned_data = {}

    def save(self, commit: bool = True) -> Any:
        self.save_m2m = lambda: None  # nothing more to save: the service has saved it all
        return self.instance


class BudgetPoolForm(ServiceForm):
    class Meta:
        model = BudgetPool
        fields = [
            "organization",
            "name",
            "description",
            "total_amount",
            "period",
            "start_date",
            "end_date",
            "alert_threshold",
        ]
        help_texts = {"alert_threshold": services.FRACTION_HELP}

    def apply(self) -> BudgetPool:
        data = self.cleaned_data
        if self.instance._state.adding:
            return services.pool_create(actor=self.actor, **data)
        changed = {name: data[name] for name in self.changed_data if name in data}
        return services.pool_update(actor=self.actor, pool=self.instance, **changed)


class AllocationForm(ServiceForm):
    alert_thresholds = forms.CharField(
        required=False, help_text="Fractions of the amount separated by commas, e.g. 0.5, 0.8, 0.9."
    )
    field_names = {"allocated_amount": "amount"}

    class Meta:
        model = Allocation
        fields = [
            "pool",
            "project",
            "amount",
            "alert_thresholds",
            "auto_hibernate_threshold",
            "prevent_launch_threshold",
            "end_date",
        ]
        help_texts = {
            "auto_hibernate_threshold": services.FRACTION_HELP,
            "prevent_launch_threshold": services.FRACTION_HELP,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.initial["alert_thresholds"] = ", ".join(self.instance.alert_thresholds or [])

    def clean_alert_thresholds(self) -> list[str]:
        text = self.cleaned_data.get("alert_thresholds") or ""
        try:
            return [str(Decimal(part.strip())) for part in text.split(",") if part.strip()]
        except InvalidOperation:
            raise ValidationError("Numbers separated by commas, e.g. 0.5, 0.8.") from None

    def apply(self) -> Allocation:
        data = dict(self.cleaned_data)
        thresholds = [Decimal(value) for value in data.pop("alert_thresholds")]
        if self.instance._state.adding:
            return allocation_services.allocation_create(actor=self.actor, alert_thresholds=thresholds, **data)
        data.pop("pool", None)
        data.pop("project", None)
        return allocation_services.allocation_update(
            actor=self.actor, allocation=self.instance, alert_thresholds=thresholds, **data
        )


class ServiceFormAdmin(admin.ModelAdmin):
    """Add and change through the form's service; delete only through an action that calls the service."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.actor = request.user  # a fresh class per request (modelform_factory)
        return form

    def save_model(self, request, obj, form, change) -> None:
        pass  # the form's service has saved it

    def save_related(self, request, form, formsets, change) -> None:
        pass

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting goes through the "delete … through the service" action, which may refuse

    def _delete(self, request, queryset, delete) -> None:
        for obj in queryset:
            try:
                delete(actor=request.user, obj=obj)
            except CarrelError as error:
                self.message_user(request, f"{obj}: not deleted: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{obj}: deleted.", messages.SUCCESS)


@admin.register(BudgetPool)
class BudgetPoolAdmin(ServiceFormAdmin):
    form = BudgetPoolForm
    list_display = ["name", "organization", "total_amount", "period", "start_date", "end_date"]
    search_fields = ["name", "id", "organization__name"]
    list_select_related = ["organization"]
    actions = ["delete_selected_pools"]

    def get_readonly_fields(self, request, obj=None):
        # What the service does not change once the pool exists.
        return ["organization", "period", "start_date", "created_by", "created_at", "allocations"] if obj else []

    @admin.display(description="Allocations (changed under Allocations)")
    def allocations(self, pool: BudgetPool) -> str:
        rows = pool.allocations.select_related("project").order_by("project__name")
        return "; ".join(f"{row.project.name}: {row.amount}" for row in rows) or "none"

    @admin.action(description="Delete selected pools (refused while they fund projects)", permissions=["change"])
    def delete_selected_pools(self, request, queryset):
        self._delete(
            request,
            queryset.select_related("organization"),
            lambda actor, obj: services.pool_delete(actor=actor, pool=obj),
        )


class ReallocateForm(forms.Form):
    to_allocation = forms.ModelChoiceField(queryset=Allocation.objects.none(), label="To")
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the audit trail.")

    def __init__(self, *args: Any, source: Allocation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to_allocation"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            Allocation.objects.filter(pool_id=source.pool_id).exclude(pk=source.pk).select_related("project", "pool")
        )


REALLOCATE_PAGE = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}{% load i18n %}
{% block content %}
<p>Move money from <strong>{{ source }}</strong> to another allocation of the pool <strong>{{ source.pool }}</strong>.
The pool's total does not change; the source may not drop below what its project has spent this period.</p>
<form method="post" novalidate>{% csrf_token %}
  {% if form.non_field_errors %}<p class="errornote">{{ form.non_field_errors|join:" " }}</p>{% endif %}
  <fieldset class="module aligned">{% for field in form %}
    <div class="form-row{% if field.errors %} errors{% endif %}">{{ field.errors }}
      <div class="flex-container">{{ field.label_tag }} {{ field }}</div>
      {% if field.help_text %}<div class="help">{{ field.help_text }}</div>{% endif %}
    </div>{% endfor %}
  </fieldset>
  <input type="hidden" name="{{ action_checkbox_name }}" value="{{ source.pk }}">
  <input type="hidden" name="action" value="reallocate">
  <input type="hidden" name="post" value="yes">
  <div class="submit-row"><input type="submit" value="Move" class="default"></div>
</form>
{% endblock %}"""
)


@admin.register(Allocation)
class AllocationAdmin(ServiceFormAdmin):
    form = AllocationForm
    list_display = ["id", "pool", "project", "amount", "allocated_at"]
    search_fields = ["id", "project__name", "pool__name"]
    list_select_related = ["pool", "project"]
    actions = ["delete_selected_allocations", "reallocate"]

    def get_readonly_fields(self, request, obj=None):
        return ["pool", "project", "allocated_by", "allocated_at"] if obj else []

    @admin.action(description="Delete selected allocations (the projects' ledgers stay)", permissions=["change"])
    def delete_selected_allocations(self, request, queryset):
        self._delete(
            request,
            queryset.select_related("pool", "project"),
            lambda actor, obj: allocation_services.allocation_delete(actor=actor, allocation=obj),
        )

    @admin.action(description="Move money from the selected allocation to another of its pool…", permissions=["change"])
    def reallocate(self, request, queryset):
        sources = list(queryset.select_related("pool__organization", "project")[:2])
        if len(sources) != 1:
            self.message_user(request, "Select exactly one allocation to move money from.", messages.ERROR)
            return None
        source = sources[0]
        form = ReallocateForm(request.POST if request.POST.get("post") == "yes" else None, source=source)
        if form.is_bound and form.is_valid():
            target = form.cleaned_data["to_allocation"]
            try:
                allocation_services.allocation_reallocate(
                    actor=request.user,
                    pool=source.pool,
                    from_allocation=source.pk,
                    to_allocation=target.pk,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                )
            except CarrelError as error:
                form.add_error(None, " ".join(part for part in [error.message, error.details] if part))
            else:
                self.message_user(
                    request, f"Moved {form.cleaned_data['amount']} from {source} to {target}.", messages.SUCCESS
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Move money between allocations",
            "subtitle": None,
            "opts": self.opts,
            "source": source,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, REALLOCATE_PAGE, context)


@admin.register(MemberCap)
class MemberCapAdmin(ReadOnlyAdmin):
    """Set through PUT /api/v1/budgets/{id}/allocations/{allocation_id}/caps (the service checks membership)."""

    list_display = ["allocation", "user", "amount"]
    search_fields = ["user__email", "allocation__project__name"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "allocation", "amount", "remaining", "created_at", "released_at"]
    search_fields = ["workspace__name", "workspace__id"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "pool", "project", "threshold", "spent", "limit"]
    list_filter = ["kind"]
    search_fields = ["project__name", "pool__name", "message"]


@admin.register(CostDay)
class CostDayAdmin(ReadOnlyAdmin):
    """The ledger's daily totals per project and kind (kept by budgets.ledger)."""

    list_display = ["day", "project", "kind", "amount"]
    list_filter = ["kind"]
    search_fields = ["project__name", "project__id"]
    list_select_related = ["project"]
    date_hierarchy = "day"


@admin.register(OpenSpendSum)
class OpenSpendSumAdmin(ReadOnlyAdmin):
    """Kept sums of open intervals (appended by a PostgreSQL trigger, folded by budgets.open_sums.compact)."""

    list_display = ["project", "month", "billed_rate", "storage_rate"]
    search_fields = ["project__name", "project__id"]
    list_select_related = ["project"]
