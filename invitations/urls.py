from django.urls import path

from invitations import views

urlpatterns = [
    path("accept/", views.invitation_page, name="invitation-page"),
    path("accept/<str:token>/", views.accept_link, name="invitation-link"),
]
