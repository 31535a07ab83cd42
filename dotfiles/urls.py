from django.urls import path

from dotfiles import views

app_name = "dotfiles"
urlpatterns = [path("", views.settings_page, name="index")]
