from django.urls import path

from ssh import api

urlpatterns = [
    path("", api.key_list, name="ssh-keys"),
    path("<id:key_id>", api.key_detail, name="ssh-key"),
]
