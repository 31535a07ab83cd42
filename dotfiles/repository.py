"""The dotfiles repository's settings: where it is, how it is set up, and
how a private one is reached (a token over https, or a deploy key over ssh).
The token and the private key go in and never come back out: answers
carry only whether there is a token, and the key's public half."""

import urllib.parse

from django.core.exceptions import ValidationError
from django.utils import timezone

from boxes import naming
from dotfiles import deploy_keys, validation
from dotfiles.models import DotfilesConfig

Access = DotfilesConfig.Access
LOOPBACK = ("127.0.0.1", "::1", "localhost")

TEXT_FIELDS = {
    "repo_url": validation.repo_url,
    "ref": validation.ref,
    "setup_path": validation.setup_path,
    "token_username": validation.token_username,
}


class Refused(ValidationError):
    """A setting that cannot be saved, and the field at fault."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def settings_of(user) -> DotfilesConfig:
    return DotfilesConfig.objects.get_or_create(user=user)[0]


def describe(config: DotfilesConfig) -> dict:
    key = config.deploy_key_public
    return {
        "enabled": config.enabled,
        "repo_url": config.repo_url,
        "ref": config.ref,
        "setup_path": config.setup_path,
        "setup_args": config.setup_args,
        "access": config.access,
        "token_username": config.token_username,
        "has_token": bool(config.encrypted_token),
        "deploy_key": {"public_key": key, "fingerprint": deploy_keys.fingerprint(key)}
        if key
        else None,
    }


def update(user, data: dict) -> DotfilesConfig:
    """Save what data changes (fields it leaves out keep their values); a
    token given replaces the one kept."""
    config = settings_of(user)
    for field, check in TEXT_FIELDS.items():
        value = data.get(field, getattr(config, field))
        if not isinstance(value, str):
            raise Refused(f"{field} must be text.", field)
        setattr(config, field, _checked(check, value.strip(), field))
    config.setup_args = _checked(
        validation.setup_args, data.get("setup_args", config.setup_args), "setup_args"
    )
    enabled = data.get("enabled", config.enabled)
    if not isinstance(enabled, bool):
        raise Refused("enabled must be true or false.", "enabled")
    config.enabled = enabled
    if data.get("token"):
        config.token = _checked(validation.token, data["token"], "token")
    config.access = data.get("access", config.access)
    _check_access(config)
    config.save()
    return config


def _check_access(config: DotfilesConfig) -> None:
    if config.access not in Access.values:
        raise Refused('access is one of: "" (public), token, deploy_key.', "access")
    ssh = naming.is_ssh_url(config.repo_url)
    if config.access == Access.TOKEN:
        if ssh:
            raise Refused(
                "A token works over https: give the repository's https URL "
                "(https://host/owner/repository.git), or use a deploy key for ssh.",
                "repo_url",
            )
        parsed = urllib.parse.urlsplit(config.repo_url)
        if parsed.scheme == "http" and parsed.hostname not in LOOPBACK:
            raise Refused(
                "A token would cross the network in the clear over http: use https.", "repo_url"
            )
        if not config.encrypted_token:
            raise Refused("Paste the token first.", "token")
    if config.access == Access.DEPLOY_KEY:
        if config.repo_url and not ssh:
            raise Refused(
                "A deploy key works over ssh: give the repository's ssh URL "
                "(git@host:owner/repository.git), or use a token for https.",
                "repo_url",
            )
        if not config.encrypted_deploy_key:
            raise Refused("Generate or paste a deploy key first.", "access")


def set_deploy_key(user, pasted: str | None = None) -> DotfilesConfig:
    """A new deploy key, generated here or the private key pasted; it
    replaces the one kept."""
    config = settings_of(user)
    comment = f"spoon-dotfiles-{user.get_username()}-{timezone.now():%Y%m%d}"
    if pasted is None:
        private, public = deploy_keys.generate(comment)
    else:
        private, public = _checked(deploy_keys.from_pasted, pasted, "private_key", comment)
    config.deploy_key, config.deploy_key_public = private, public
    config.save()
    return config


def forget_token(user) -> None:
    config = settings_of(user)
    config.token = ""
    if config.access == Access.TOKEN:
        config.access = Access.PUBLIC
    config.save()


def forget_deploy_key(user) -> None:
    config = settings_of(user)
    config.deploy_key, config.deploy_key_public = "", ""
    if config.access == Access.DEPLOY_KEY:
        config.access = Access.PUBLIC
    config.save()


def _checked(check, value, field: str, *args):
    try:
        return check(value, *args)
    except Refused:
        raise
    except ValidationError as exc:
        raise Refused(exc.messages[0], field) from exc
