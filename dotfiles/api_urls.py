from django.urls import path

from dotfiles import api

urlpatterns = [
    path("files/", api.file_list, name="dotfiles-files"),
    path("files/<path:path>", api.file_detail, name="dotfiles-file"),
    path("home/", api.home_list, name="dotfiles-home"),
    path("home/<path:path>", api.home_file, name="dotfiles-home-file"),
    path("rename", api.rename, name="dotfiles-rename"),
    path("config", api.config, name="dotfiles-config"),
    path("deploy-key", api.deploy_key, name="dotfiles-deploy-key"),
    path("token", api.token, name="dotfiles-token"),
    path("apply", api.apply_now, name="dotfiles-apply"),
    path("runs/", api.run_list, name="dotfiles-runs"),
    path("runs/<id:run_id>", api.run_detail, name="dotfiles-run"),
]
