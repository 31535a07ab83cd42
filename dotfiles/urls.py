from django.urls import path

from dotfiles import views

app_name = "dotfiles"
urlpatterns = [
    path("dotfiles/", views.settings_page, name="index"),
    path("secrets/", views.secrets_page, name="secrets"),
    path("secrets/<str:name>/delete", views.delete_secret, name="secret-delete"),
]
