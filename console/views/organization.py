"""Organization pages, for its owners and admins: budget pools and their allocations to projects, members, projects
and cloud accounts. A plain member of the organization gets a 403 page saying who manages it; anyone else, the 404
page (the same answer as for an organization that does not exist).

Each page calls what the API calls: `budgets.api.pools` (pools, allocations, reallocation), `accounts.api`
(members), `workspaces.api.profiles` (cloud accounts). The forms are parsed by the API's own serializers, so the
same input is refused the same way; the services decide the rest and their errors show next to the fields.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import Membership, Organization, OrgRole
from accounts.serializers import MembershipCreateSerializer, MembershipUpdateSerializer
from budgets import ledger
from budgets import selectors_pools as figures
from budgets.models import Allocation, BudgetPool
from budgets.serializers_pools import (
    AllocationCreateSerializer,
    AllocationUpdateSerializer,
    PoolCreateSerializer,
    PoolUpdateSerializer,
    ReallocateSerializer,
)
from budgets.services import allocations as allocation_services
from budgets.services import pools as pool_services
from console.templatetags.console import money
from console.views.base import NON_FIELD, ConsoleView, done, failed, field_errors, not_found, serializer_errors
from platform_site.errors import CarrelError, NotFound, ValidationFailed
from platform_site.tenancy import scoped_queryset, visible_or_404
from projects.models import Project
from projects.selectors import projects_for
from workspaces.models import CloudAccount, WorkspacePreference
from workspaces.services import profile_switch

MANAGERS = {OrgRole.OWNER, OrgRole.ADMIN}
PERCENT_HELP = "A percentage between 0 and 100."
THRESHOLD_FIELDS = {"alert_threshold", "alert_thresholds", "auto_hibernate_threshold", "prevent_launch_threshold"}
# Service errors without `fields`, and the form field they concern.
CODE_FIELDS = {
    "ALLOCATION_EXCEEDS_POOL": "allocated_amount",
    "PROJECT_ALREADY_FUNDED": "project_id",
    "PROJECT_NOT_FOUND": "project_id",
    "ALLOCATION_BELOW_SPENT": "amount",
    "ALLOCATION_NOT_FOUND": "from_allocation",
    "NAME_TAKEN": "name",
    "ALREADY_MEMBER": "email",
    "ROLE_TOO_HIGH": "role",
}


class Forbidden(Exception):
    """A member of the organization who is neither owner nor admin."""


# --- Forms: the console's fields to the API's input -----------------------------------------------------------


def errors_of(error: CarrelError, code_fields: dict[str, str] | None = None) -> dict[str, list[str]]:
    """A service error next to its field; money in words where the error carries the figures."""
    shown = field_errors(error, code_fields={**CODE_FIELDS, **(code_fields or {})})
    extra = error.extra or {}
    if str(error.code) == "ALLOCATION_EXCEEDS_POOL" and "unallocated_amount" in extra:
        for texts in shown.values():
            texts.append(f"Unallocated in this pool: {money(extra['unallocated_amount'])}.")
    if str(error.code) == "ALLOCATION_BELOW_SPENT" and "movable_amount" in extra:
        for texts in shown.values():
            texts.append(f"At most {money(extra['movable_amount'])} can move.")
    return percent_help(shown)


def percent_help(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Thresholds are fractions in the API and percentages on the page: say it in the page's terms."""
    return {field: ([PERCENT_HELP] if field in THRESHOLD_FIELDS else texts) for field, texts in errors.items()}


def fraction(text: str) -> str | None:
    """ "80" (percent) → "0.8"; blank → None; anything else is left for the serializer to refuse."""
    text = text.strip().rstrip("%").strip()
    if not text:
        return None
    try:
        return str((Decimal(text) / 100).normalize())
    except InvalidOperation:
        return text


def fractions(text: str) -> list[str]:
    return [value for part in text.replace(";", ",").split(",") if (value := fraction(part)) is not None]


def as_percent(value) -> str:
    if value is None or value == "":
        return ""
    return f"{(Decimal(str(value)) * 100).normalize():f}"


def day_start(day: str, organization: Organization, *, after: bool = False) -> str | None:
    """A date from a date input as the API's date and time: the local midnight that begins it (or, `after`,
    the one that ends it) in the organization's time zone. Periods are whole local days."""
    if not day:
        return None
    try:
        chosen = date.fromisoformat(day.strip())
    except ValueError:
        return day  # the serializer refuses it in its own words
    if after:
        chosen += timedelta(days=1)
    zone = ledger.zone_of(organization.time_zone)
    return datetime.combine(chosen, time(0), tzinfo=zone).astimezone(UTC).isoformat()


def local_days(moment: datetime | None, organization: Organization, *, end: bool = False):
    """The local day a start falls on, or (`end`) the last local day before an end."""
    if moment is None:
        return None
    local = moment.astimezone(ledger.zone_of(organization.time_zone))
    if end and local.time() == time(0):
        return (local - timedelta(days=1)).date()
    return local.date()


def date_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The serializer's date-time wording ("ISO 8601") is not what a date input shows."""
    for field in ("start_date", "end_date"):
        if field in errors and any("format" in text or "ISO" in text for text in errors[field]):
            errors[field] = ["Enter a date such as 2027-06-30."]
    return errors


# --- The organization, its manager, and the pages -------------------------------------------------------------


class OrganizationView(ConsoleView):
    """Resolves the organization for every method: 404 unless the caller belongs to it, 403 unless they manage it."""

    organization: Organization

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        try:
            self.organization = self.load(request, kwargs["organization_id"])
        except CarrelError as error:
            return not_found(request, error)
        except Forbidden:
            return render(
                request, "console/organization/forbidden.html", {"organization": self.organization}, status=403
            )
        return super().dispatch(request, *args, **kwargs)

    def load(self, request: HttpRequest, organization_id: str) -> Organization:
        organization = (
            account_selectors.organizations_for(user=request.user).filter(pk=organization_id).first()
            if organization_id
            else None
        )
        if organization is None:
            raise NotFound("No such organization of yours.", code="ORGANIZATION_NOT_FOUND")
        self.organization = organization
        if organization.caller_role not in MANAGERS:
            raise Forbidden
        return organization

    def url(self, name: str, *args) -> str:
        return reverse(f"console:{name}", args=[self.organization.pk, *args])

    def render_page(self, request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
        context = {"organization": self.organization, "tab": self.tab, **context}
        return render(request, f"console/organization/{template}", context, status=status)

    tab = "budgets"


# --- Budget pools ---------------------------------------------------------------------------------------------


class PoolsView(OrganizationView):
    """The organization's budget pools with their figures, and the form to create one."""

    def get(self, request: HttpRequest, organization_id: str) -> HttpResponse:
        return self.page(request)

    def post(self, request: HttpRequest, organization_id: str) -> HttpResponse:
        organization = self.organization
        form = {
            field: request.POST.get(field, "").strip()
            for field in ("name", "description", "total_amount", "period", "start_date", "end_date", "alert_threshold")
        }
        data = {
            "organization": organization.pk,
            "name": form["name"],
            "description": form["description"],
            "total_amount": form["total_amount"],
            "period": form["period"] or BudgetPool.Period.PROJECT,
            "start_date": day_start(form["start_date"], organization),
            "end_date": day_start(form["end_date"], organization, after=True),
        }
        if form["alert_threshold"]:
            data["alert_threshold"] = fraction(form["alert_threshold"])
        parsed = PoolCreateSerializer(data=data)
        if not parsed.is_valid():
            errors = date_errors(percent_help(serializer_errors(parsed.errors)))
            return self.page(request, form=form, errors=errors, status=400)
        values = dict(parsed.validated_data)
        values.pop("organization", None)
        if values.get("alert_threshold") is None:
            values.pop("alert_threshold", None)
        try:
            pool_services.require_manager(actor=request.user, organization_id=organization.pk)
            pool = pool_services.pool_create(actor=request.user, organization=organization, **values)
        except CarrelError as error:
            status = 409 if error.status_code == 409 else 400
            return self.page(request, form=form, errors=errors_of(error), status=status)
        return done(request, f"Budget pool {pool.name} created.", self.url("organization-pool", pool.pk))

    def page(self, request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
        pools = list(
            scoped_queryset(BudgetPool, request.user)
            .filter(organization_id=self.organization.pk)
            .select_related("organization")
            .annotate(allocation_count=Count("allocations"))
            .order_by("-end_date", "name", "id")
        )
        found = figures.pool_figures(pools)
        for pool in pools:
            pool.figures = found[pool.pk]
            pool.first_day = local_days(pool.start_date, self.organization)
            pool.last_day = local_days(pool.end_date, self.organization, end=True)
        totals = {
            "total": sum((pool.total_amount for pool in pools), Decimal(0)),
            "allocated": sum((pool.figures.allocated for pool in pools), Decimal(0)),
            "spent": sum((pool.figures.spent for pool in pools), Decimal(0)),
        }
        errors = extra.pop("errors", {})
        context = {
            "pools": pools,
            "totals": totals,
            "periods": BudgetPool.Period.choices,
            "form": extra.pop("form", {"period": BudgetPool.Period.PROJECT, "alert_threshold": "80"}),
            "errors": errors,
            "form_errors": errors.get(NON_FIELD, []),
            **extra,
        }
        return self.render_page(request, "pools.html", context, status=status)


class PoolView(OrganizationView):
    """One pool: its figures, allocations (create, change, delete), reallocation between them, its alerts."""

    def pool(self, request: HttpRequest, pool_id: str) -> BudgetPool:
        return visible_or_404(
            BudgetPool,
            request.user,
            code="BUDGET_NOT_FOUND",
            message="No such budget pool in this organization.",
            refine=lambda queryset: queryset.select_related("organization", "created_by"),
            pk=pool_id,
            organization_id=self.organization.pk,
        )

    def allocation(self, request: HttpRequest, pool: BudgetPool, allocation_id: str) -> Allocation:
        return visible_or_404(
            Allocation,
            request.user,
            code="ALLOCATION_NOT_FOUND",
            message="No such allocation in this budget pool.",
            refine=lambda queryset: queryset.select_related("pool__organization", "project"),
            pk=allocation_id,
            pool_id=pool.pk,
        )

    def get(self, request: HttpRequest, organization_id: str, pool_id: str, **_: str) -> HttpResponse:
        # The pool's form addresses (an allocation's, its delete) answer a GET with the pool's page.
        return self.page(request, self.pool(request, pool_id))

    def page(self, request: HttpRequest, pool: BudgetPool, *, status: int = 200, **extra) -> HttpResponse:
        organization = self.organization
        summary = figures.pool_summary(pool, user=request.user)
        allocations = summary.allocations
        for allocation in allocations:
            allocation.last_day = local_days(allocation.end_date, organization, end=True)
            allocation.form = {
                "allocated_amount": f"{allocation.amount:f}",
                "alert_thresholds": ", ".join(as_percent(value) for value in allocation.alert_thresholds or []),
                "auto_hibernate_threshold": as_percent(allocation.auto_hibernate_threshold),
                "prevent_launch_threshold": as_percent(allocation.prevent_launch_threshold),
                "end_date": allocation.last_day.isoformat() if allocation.last_day else "",
            }
            allocation.errors = {}
        edited = extra.pop("edited", None)
        if edited is not None:
            for allocation in allocations:
                if allocation.pk == edited["id"]:
                    allocation.form = edited["form"]
                    allocation.errors = edited["errors"]
                    allocation.form_errors = edited["errors"].get(NON_FIELD, [])
        unfunded = list(
            scoped_queryset(Project, request.user)
            .filter(organization_id=organization.pk, allocation__isnull=True)
            .order_by("name", "id")
        )
        pool.figures = summary.figures
        pool.first_day = local_days(pool.start_date, organization)
        pool.last_day = local_days(pool.end_date, organization, end=True)
        pool.period_first = local_days(summary.figures.period_start, organization)
        pool.period_last = local_days(summary.figures.period_end, organization, end=True)
        pool_errors = extra.pop("pool_errors", {})
        pool_form = extra.pop("pool_form", None) or {
            "name": pool.name,
            "description": pool.description,
            "total_amount": f"{pool.total_amount:f}",
            "alert_threshold": as_percent(pool.alert_threshold),
            "end_date": pool.last_day.isoformat(),
        }
        allocation_errors = extra.pop("allocation_errors", {})
        reallocate_errors = extra.pop("reallocate_errors", {})
        context = {
            "pool": pool,
            "summary": summary,
            "allocations": allocations,
            "unfunded": unfunded,
            "allocation_form": extra.pop("allocation_form", {"alert_thresholds": "50, 80, 90"}),
            "allocation_errors": allocation_errors,
            "allocation_form_errors": allocation_errors.get(NON_FIELD, []),
            "pool_form": pool_form,
            "pool_errors": pool_errors,
            "pool_form_errors": pool_errors.get(NON_FIELD, []),
            "reallocate_form": extra.pop("reallocate_form", {}),
            "reallocate_errors": reallocate_errors,
            "reallocate_form_errors": reallocate_errors.get(NON_FIELD, []),
            **extra,
        }
        return self.render_page(request, "pool.html", context, status=status)


class PoolUpdateView(PoolView):
    """Rename the pool, change its description, total (not below what is allocated), warning or last day."""

    def post(self, request: HttpRequest, organization_id: str, pool_id: str) -> HttpResponse:
        pool = self.pool(request, pool_id)
        fields = ("name", "description", "total_amount", "alert_threshold", "end_date")
        form = {field: request.POST.get(field, "").strip() for field in fields}
        data = {
            "name": form["name"],
            "description": form["description"],
            "total_amount": form["total_amount"],
            "alert_threshold": fraction(form["alert_threshold"]),
            "end_date": day_start(form["end_date"], self.organization, after=True),
        }
        parsed = PoolUpdateSerializer(data={key: value for key, value in data.items() if value is not None})
        if not parsed.is_valid():
            errors = date_errors(percent_help(serializer_errors(parsed.errors)))
            return self.page(request, pool, pool_form=form, pool_errors=errors, status=400)
        try:
            pool_services.require_manager(actor=request.user, organization_id=pool.organization_id)
            pool = pool_services.pool_update(actor=request.user, pool=pool, **parsed.validated_data)
        except CarrelError as error:
            return self.page(request, pool, pool_form=form, pool_errors=errors_of(error), status=status_of(error))
        return done(request, f"Budget pool {pool.name} saved.", self.url("organization-pool", pool.pk))


class PoolDeleteView(PoolView):
    def post(self, request: HttpRequest, organization_id: str, pool_id: str) -> HttpResponse:
        pool = self.pool(request, pool_id)
        try:
            pool_services.pool_delete(actor=request.user, pool=pool)
        except CarrelError as error:
            return failed(request, error, self.url("organization-pool", pool.pk))
        return done(request, f"Budget pool {pool.name} deleted.", self.url("organization"))


def allocation_input(request: HttpRequest, organization: Organization) -> tuple[dict, dict]:
    """The allocation form as typed, and as the API's body."""
    form = {
        field: request.POST.get(field, "").strip()
        for field in (
            "project_id",
            "allocated_amount",
            "alert_thresholds",
            "auto_hibernate_threshold",
            "prevent_launch_threshold",
            "end_date",
        )
    }
    data = {
        "allocated_amount": form["allocated_amount"],
        "alert_thresholds": fractions(form["alert_thresholds"]),
        "auto_hibernate_threshold": fraction(form["auto_hibernate_threshold"]),
        "prevent_launch_threshold": fraction(form["prevent_launch_threshold"]),
        "end_date": day_start(form["end_date"], organization, after=True),
    }
    return form, data


def status_of(error: CarrelError) -> int:
    return error.status_code if error.status_code in (400, 403, 409) else 400


class AllocationCreateView(PoolView):
    def post(self, request: HttpRequest, organization_id: str, pool_id: str) -> HttpResponse:
        pool = self.pool(request, pool_id)
        form, data = allocation_input(request, self.organization)
        data["project_id"] = form["project_id"]
        parsed = AllocationCreateSerializer(data=data)
        if not parsed.is_valid():
            errors = date_errors(percent_help(serializer_errors(parsed.errors)))
            return self.page(request, pool, allocation_form=form, allocation_errors=errors, status=400)
        values = dict(parsed.validated_data)
        try:
            pool_services.require_manager(actor=request.user, organization_id=pool.organization_id)
            allocation = allocation_services.allocation_create(
                actor=request.user,
                pool=pool,
                project=values.pop("project_id"),
                amount=values.pop("allocated_amount"),
                **values,
            )
        except CarrelError as error:
            return self.page(
                request, pool, allocation_form=form, allocation_errors=errors_of(error), status=status_of(error)
            )
        return done(
            request,
            f"{allocation.project.name} funded with {money(allocation.amount)} from {pool.name}.",
            self.url("organization-pool", pool.pk),
        )


class AllocationUpdateView(PoolView):
    def post(self, request: HttpRequest, organization_id: str, pool_id: str, allocation_id: str) -> HttpResponse:
        pool = self.pool(request, pool_id)
        allocation = self.allocation(request, pool, allocation_id)
        form, data = allocation_input(request, self.organization)
        parsed = AllocationUpdateSerializer(data=data)
        if not parsed.is_valid():
            errors = date_errors(percent_help(serializer_errors(parsed.errors)))
            edited = {"id": allocation.pk, "form": form, "errors": errors}
            return self.page(request, pool, edited=edited, status=400)
        values = dict(parsed.validated_data)
        if "allocated_amount" in values:
            values["amount"] = values.pop("allocated_amount")
        try:
            pool_services.require_manager(actor=request.user, organization_id=pool.organization_id)
            allocation_services.allocation_update(actor=request.user, allocation=allocation, **values)
        except CarrelError as error:
            edited = {"id": allocation.pk, "form": form, "errors": errors_of(error)}
            return self.page(request, pool, edited=edited, status=status_of(error))
        return done(
            request, f"Allocation of {allocation.project.name} changed.", self.url("organization-pool", pool.pk)
        )


class AllocationDeleteView(PoolView):
    def post(self, request: HttpRequest, organization_id: str, pool_id: str, allocation_id: str) -> HttpResponse:
        pool = self.pool(request, pool_id)
        allocation = self.allocation(request, pool, allocation_id)
        back = self.url("organization-pool", pool.pk)
        try:
            allocation_services.allocation_delete(actor=request.user, allocation=allocation)
        except CarrelError as error:
            return failed(request, error, back)
        return done(request, f"{allocation.project.name} is no longer funded by {pool.name}; its costs are kept.", back)


class ReallocateView(PoolView):
    def post(self, request: HttpRequest, organization_id: str, pool_id: str) -> HttpResponse:
        pool = self.pool(request, pool_id)
        form = {field: request.POST.get(field, "").strip() for field in ("from_allocation", "to_allocation", "amount")}
        form["reason"] = request.POST.get("reason", "").strip()
        data = {key: value for key, value in form.items() if value or key in ("amount", "reason")}
        parsed = ReallocateSerializer(data=data)
        if not parsed.is_valid():
            errors = serializer_errors(parsed.errors)
            return self.page(request, pool, reallocate_form=form, reallocate_errors=errors, status=400)
        try:
            pool_services.require_manager(actor=request.user, organization_id=pool.organization_id)
            source, target = allocation_services.allocation_reallocate(
                actor=request.user, pool=pool, **parsed.validated_data
            )
        except CarrelError as error:
            errors = errors_of(error)
            for api_field, form_field in (("from_project", "from_allocation"), ("to_project", "to_allocation")):
                if api_field in errors:
                    errors[form_field] = errors.pop(api_field)
            return self.page(request, pool, reallocate_form=form, reallocate_errors=errors, status=status_of(error))
        return done(
            request,
            f"Moved {money(parsed.validated_data['amount'])} from {source.project.name} to {target.project.name}.",
            self.url("organization-pool", pool.pk),
        )


# --- Members and projects -------------------------------------------------------------------------------------


class MembersView(OrganizationView):
    tab = "members"

    def get(self, request: HttpRequest, organization_id: str) -> HttpResponse:
        return self.page(request)

    def post(self, request: HttpRequest, organization_id: str) -> HttpResponse:
        """Add an existing user by e-mail (accounts.services.membership_add)."""
        form = {"email": request.POST.get("email", "").strip(), "role": request.POST.get("role", OrgRole.MEMBER)}
        parsed = MembershipCreateSerializer(data=form)
        if not parsed.is_valid():
            return self.page(request, form=form, errors=serializer_errors(parsed.errors), status=400)
        try:
            membership = account_services.membership_add(
                actor=request.user, organization=self.organization, **parsed.validated_data
            )
        except CarrelError as error:
            return self.page(request, form=form, errors=errors_of(error), status=status_of(error))
        return done(
            request,
            f"{membership.user.email} joined {self.organization.name} as {membership.role}.",
            self.url("organization-members"),
        )

    def page(self, request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
        organization = self.organization
        memberships = list(
            Membership.objects.filter(organization_id=organization.pk)
            .select_related("user")
            .order_by("user__email", "id")
        )
        projects = list(
            projects_for(
                user=request.user,
                queryset=scoped_queryset(Project, request.user).filter(organization_id=organization.pk),
            )
        )
        errors = extra.pop("errors", {})
        context = {
            "memberships": memberships,
            "projects": projects,
            "roles": OrgRole.choices,
            "form": extra.pop("form", {"role": OrgRole.MEMBER}),
            "errors": errors,
            "form_errors": errors.get(NON_FIELD, []),
            **extra,
        }
        return self.render_page(request, "members.html", context, status=status)


class MemberView(OrganizationView):
    tab = "members"

    def membership(self, request: HttpRequest, username: str) -> Membership:
        return visible_or_404(
            Membership,
            request.user,
            code="MEMBER_NOT_FOUND",
            message="No such member of this organization.",
            refine=lambda queryset: queryset.select_related("user", "organization"),
            organization_id=self.organization.pk,
            user__username=username,
        )

    def post(self, request: HttpRequest, organization_id: str, username: str, action: str) -> HttpResponse:
        membership = self.membership(request, username)
        back = self.url("organization-members")
        try:
            if action == "remove":
                account_services.membership_remove(actor=request.user, membership=membership)
            else:
                parsed = MembershipUpdateSerializer(data={"role": request.POST.get("role", "")})
                if not parsed.is_valid():
                    messages_ = serializer_errors(parsed.errors)
                    return failed(request, ValidationFailed(" ".join(sum(messages_.values(), []))), back)
                account_services.membership_update_role(
                    actor=request.user, membership=membership, **parsed.validated_data
                )
        except CarrelError as error:
            return failed(request, error, back)
        who = membership.user.email
        if action == "remove":
            if membership.user_id == request.user.pk:
                return done(request, f"You left {self.organization.name}.", reverse("console:home"))
            return done(request, f"{who} was removed from {self.organization.name}.", back)
        if membership.user_id == request.user.pk and membership.role not in MANAGERS:
            return done(
                request, f"You are now a {membership.role} of {self.organization.name}.", reverse("console:home")
            )
        return done(request, f"{who} is now {membership.role}.", back)


# --- Cloud accounts -------------------------------------------------------------------------------------------


class CloudAccountsView(OrganizationView):
    """The organization's cloud accounts (read-only: the API has no route to change them; operators do, in the
    admin), and each person's own default account (POST /api/v1/profiles/switch)."""

    tab = "cloud"

    def get(self, request: HttpRequest, organization_id: str) -> HttpResponse:
        accounts = list(
            scoped_queryset(CloudAccount, request.user)
            .filter(organization_id=self.organization.pk)
            .order_by("-is_default", "name", "id")
        )
        preference = WorkspacePreference.objects.filter(user=request.user).only("cloud_account_id").first()
        mine = preference.cloud_account_id if preference else None
        return self.render_page(request, "cloud_accounts.html", {"accounts": accounts, "my_account_id": mine})


class CloudAccountDefaultView(OrganizationView):
    tab = "cloud"

    def post(self, request: HttpRequest, organization_id: str, account_id: str) -> HttpResponse:
        account = visible_or_404(
            CloudAccount,
            request.user,
            code="PROFILE_NOT_FOUND",
            message="No such cloud account in this organization.",
            pk=account_id,
            organization_id=self.organization.pk,
        )
        profile_switch(actor=request.user, cloud_account=account, project=None)
        return done(request, f"{account.name} is now your default cloud account.", self.url("organization-cloud"))


ORGANIZATION = "organizations/<str:organization_id>/"
POOL = ORGANIZATION + "budgets/<str:pool_id>/"

urlpatterns = [
    path(ORGANIZATION, PoolsView.as_view(), name="organization"),
    path(POOL, PoolView.as_view(), name="organization-pool"),
    path(POOL + "edit", PoolUpdateView.as_view(), name="organization-pool-update"),
    path(POOL + "delete", PoolDeleteView.as_view(), name="organization-pool-delete"),
    path(POOL + "allocations", AllocationCreateView.as_view(), name="organization-allocations"),
    path(POOL + "allocations/<str:allocation_id>", AllocationUpdateView.as_view(), name="organization-allocation"),
    path(
        POOL + "allocations/<str:allocation_id>/delete",
        AllocationDeleteView.as_view(),
        name="organization-allocation-delete",
    ),
    path(POOL + "reallocate", ReallocateView.as_view(), name="organization-reallocate"),
    path(ORGANIZATION + "members/", MembersView.as_view(), name="organization-members"),
    path(
        ORGANIZATION + "members/<str:username>/role",
        MemberView.as_view(),
        {"action": "role"},
        name="organization-member-role",
    ),
    path(
        ORGANIZATION + "members/<str:username>/remove",
        MemberView.as_view(),
        {"action": "remove"},
        name="organization-member-remove",
    ),
    path(ORGANIZATION + "cloud-accounts/", CloudAccountsView.as_view(), name="organization-cloud"),
    path(
        ORGANIZATION + "cloud-accounts/<str:account_id>/default",
        CloudAccountDefaultView.as_view(),
        name="organization-cloud-default",
    ),
]
