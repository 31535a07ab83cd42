from django.urls import path

from previews import views

urlpatterns = [
    path("open", views.open_preview, name="preview-open"),
]
