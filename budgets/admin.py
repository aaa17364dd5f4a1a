from django.contrib import admin

from budgets.models import Allocation, BudgetAlert, BudgetPool, CostEntry, MemberCap, Price, Reservation


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services (the ledger, the enforcement task): visible, never edited here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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


@admin.register(BudgetPool)
class BudgetPoolAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "total_amount", "period", "start_date", "end_date"]
    search_fields = ["name", "id", "organization__name"]
    list_select_related = ["organization"]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = ["id", "pool", "project", "amount", "allocated_at"]
    search_fields = ["id", "project__name", "pool__name"]
    list_select_related = ["pool", "project"]


@admin.register(MemberCap)
class MemberCapAdmin(ReadOnlyAdmin):
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
