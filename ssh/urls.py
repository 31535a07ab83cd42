from django.urls import path

from ssh import views

app_name = "ssh"
urlpatterns = [
    path("ssh-keys/", views.keys_page, name="keys"),
    path("ssh-keys/<id:key_id>/delete", views.delete_key, name="key-delete"),
]
