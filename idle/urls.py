from django.urls import path

from idle import views

urlpatterns = [
    path("snooze/<str:token>", views.snooze_link, name="idle-snooze-link"),
]
