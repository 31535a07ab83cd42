from django.urls import path

from previews import api

urlpatterns = [
    path("ports/", api.port_list, name="preview-ports"),
    path("ports/<str:port>", api.port_detail, name="preview-port"),
    path("ports/<str:port>/link", api.new_link, name="preview-port-link"),
]
