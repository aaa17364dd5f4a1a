"""Budget pools and allocations: /api/v1/budgets…"""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
