"""Project money and costs: /api/v1/projects/{id}/budget, /cost-analysis, /api/v1/costs…"""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
