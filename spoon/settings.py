"""Every setting Spoon has, read from the environment in this one place.

With no variables set Spoon runs for development: SQLite and a secret key kept
in the data directory, the in-memory channel layer, DEBUG off.
SPOON_PRODUCTION=true turns on the deploy hardening and refuses to start
without an explicit SECRET_KEY.
"""

import base64
import os
import uuid
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATA_DIR = Path(env.str("SPOON_DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
# It holds the database (password hashes, sessions) and the kept keys.
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)

PRODUCTION = env.bool("SPOON_PRODUCTION", default=False)
DEBUG = env.bool("DEBUG", default=False)


def _kept(path: Path, make) -> str:
    """A value generated once and kept in the data directory (mode 0600).
    Written aside and linked into place, so a process starting at the same
    moment reads either nothing yet or the whole value, never half of it."""
    if not path.exists():
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make() + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process kept its value first; theirs stands
        finally:
            aside.unlink()
    return path.read_text().strip()


if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG=true is refused when SPOON_PRODUCTION=true.")
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SPOON_PRODUCTION=true needs SECRET_KEY: make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` "
            "and put it in the environment."
        )
    SECRET_KEY = _kept(DATA_DIR / "secret_key", get_random_secret_key)
if PRODUCTION and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "SECRET_KEY is too short for production (under 32 characters; a placeholder?): "
        "make one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
# Keys signed with before a rotation: sessions and links stay good while they last.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "spoon",
    "boxes",
    "dotfiles.apps.DotfilesConfig",
    "terminal",
    "workspaces",
    "previews",
    "ssh",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "spoon.middleware.SecurityHeaders",
    "spoon.middleware.RefuseNulCharacters",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out login
]

# Failed logins (the site's and the admin's) are counted in the database by
# django-axes, so every process counts together. SPOON_LOGIN_FAILURE_LIMIT
# failures for one account, or from one address, refuse further tries from
# either with a 429 for SPOON_LOGIN_LOCKOUT_MINUTES.
# Behind a proxy, daphne --proxy-headers gives the client's own address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SPOON_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SPOON_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not wipe the count: it would let someone with an account of
# their own reset an address's failures between guesses at others'.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "spoon.views.locked_out"
AXES_DISABLE_ACCESS_LOG = True  # failures are what it is for; no row per login

ROOT_URLCONF = "spoon.urls"
ASGI_APPLICATION = "spoon.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "previews.context.previews",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (daphne, reapboxes, manage.py) share one file: wait for
    # the lock instead of failing at once.
    # IMMEDIATE takes the write lock when a transaction begins, so
    # select_for_update() (a no-op on SQLite) still serializes box changes.
    # WAL lets readers go on while one writes, and a writer commit while they read.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL",
        }
    )
    # Tests use a file, not shared-cache memory: there, concurrent writers
    # fail at once instead of waiting, and other processes cannot see it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")


def redis_channel_layers(url: str) -> dict:
    """The Redis channel layer. Its sockets get no read timeout: redis-py 8
    gives them 5 s by default, which cut channels-redis' blocking receive, and
    so every consumer, after 5 s (channels_redis issue 422)."""
    hosts = [{"address": url, "socket_timeout": None}]
    return {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": hosts}}
    }


if REDIS_URL:
    CHANNEL_LAYERS = redis_channel_layers(REDIS_URL)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# In development static files are served straight from the source folders,
# so an edit shows without collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "spoon.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    # Set SPOON_BEHIND_TLS_PROXY when a proxy terminates TLS and sends
    # X-Forwarded-Proto; without it Spoon would redirect forever.
    if env.bool("SPOON_BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SPOON_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # A preview host under Spoon's own domain could set a cookie for the
    # whole domain (cookie tossing); __Host- cookies cannot be set that way.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_HSTS_SECONDS = env.int("SPOON_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SPOON_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SPOON_HSTS_PRELOAD", default=True)

# Previews: http(s)://<port>--<box>.<SPOON_PREVIEW_DOMAIN>/ serves a port
# of a box, on host names that are never Spoon's own. Empty turns them off.
# "localhost" works with no DNS: browsers send every *.localhost to loopback.
SPOON_PREVIEW_DOMAIN = env.str("SPOON_PREVIEW_DOMAIN", default="localhost").strip(".").lower()
# Spoon's own address, where a private preview sends a visitor to sign in.
# Unset: the preview domain itself, on the scheme and port the preview came on.
SPOON_URL = env.str("SPOON_URL", default="").rstrip("/")

# SSH into boxes (manage.py sshgateway): where it listens, and the host name
# the SSH keys page tells users to connect to (unset: the name they reached
# Spoon by). Host keys are made once into SPOON_DATA_DIR/ssh.
SPOON_SSH_PORT = env.int("SPOON_SSH_PORT", default=2222)
SPOON_SSH_BIND = env.str("SPOON_SSH_BIND", default="127.0.0.1")
SPOON_SSH_HOST = env.str("SPOON_SSH_HOST", default="")

# /metrics answers only `Authorization: Bearer <this>`; unset, there are none.
SPOON_METRICS_TOKEN = env.str("SPOON_METRICS_TOKEN", default="")

# The Docker Engine. Unset means docker's own default (the local socket).
DOCKER_HOST = env.str("DOCKER_HOST", default="")
DOCKER_TLS_VERIFY = env.str("DOCKER_TLS_VERIFY", default="")
DOCKER_CERT_PATH = env.str("DOCKER_CERT_PATH", default="")
DOCKER_TIMEOUT = env.int("SPOON_DOCKER_TIMEOUT", default=60)

# The image every box runs. Built locally by `manage.py buildimages` unless an
# operator points it at a registry ref (tag or digest).
SPOON_JOB_IMAGE = env.str("SPOON_JOB_IMAGE", default="spoon-job:1")
# What the job image is built FROM: a local Debian root made with mmdebstrap
# (no registry needed), or any Debian or Fedora image a registry serves.
SPOON_BASE_IMAGE = env.str("SPOON_BASE_IMAGE", default="spoon-base:bookworm")

# Boxes. One id per installation labels its containers, so two installations
# (or a test run and a developer's Spoon) sharing an engine never touch each
# other's boxes.
SPOON_INSTANCE = env.str("SPOON_INSTANCE", default="") or _kept(
    DATA_DIR / "instance_id", lambda: uuid.uuid4().hex[:12]
)
SPOON_BOX_MEMORY = env.str("SPOON_BOX_MEMORY", default="4g")  # swap included: none beyond it
# Unset: 2, or one less than the engine's host has, whichever is fewer, so a
# busy box always leaves the host a core (boxes.lifecycle.cpu_limit).
SPOON_BOX_CPUS = env.float("SPOON_BOX_CPUS", default=None)
SPOON_BOX_PIDS = env.int("SPOON_BOX_PIDS", default=512)


def _bytes(size: str, name: str) -> int | None:
    """ "20g", "500m", "1024k" or a number of bytes, as the engine reads sizes; "" is none."""
    size = size.strip().lower()
    if not size:
        return None
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    number, unit = (size[:-1], units[size[-1]]) if size[-1] in units else (size, 1)
    try:
        count = int(float(number) * unit)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={size!r} is not a size such as 20g or 500m.") from None
    return count if count > 0 else None  # 0 reads as none, not as a home that is always full


# Measured by Spoon (du in the box, at most every SPOON_HOME_MEASURE_SECONDS,
# by the reaper): the engine's local volumes have no size limit to enforce.
SPOON_HOME_QUOTA = env.str("SPOON_HOME_QUOTA", default="")
SPOON_HOME_QUOTA_BYTES = _bytes(SPOON_HOME_QUOTA, "SPOON_HOME_QUOTA")
SPOON_HOME_MEASURE_SECONDS = env.int("SPOON_HOME_MEASURE_SECONDS", default=300)
# A bridge network Spoon creates with inter-container traffic off, so one
# user's box cannot reach services in another's; "bridge" is the engine's
# shared one, "none" cuts boxes off (the tests use it).
SPOON_BOX_NETWORK = env.str("SPOON_BOX_NETWORK", default="spoon-boxes")
# What boxes on it may reach besides the internet: neither this host's own
# addresses nor link-local ones (cloud metadata) unless listed here.
SPOON_BOX_EGRESS = env.list("SPOON_BOX_EGRESS", default=[])
if set(SPOON_BOX_EGRESS) - {"host", "link-local"}:
    raise ImproperlyConfigured(
        f"SPOON_BOX_EGRESS={','.join(SPOON_BOX_EGRESS)!r}: list only host and link-local."
    )
# A sandboxing runtime (runsc, sysbox-runc); unset means the engine's default.
SPOON_BOX_RUNTIME = env.str("SPOON_BOX_RUNTIME", default="")
# Passwordless sudo in the box. It needs no-new-privileges off and root's
# usual capabilities inside the box: pair it with SPOON_BOX_RUNTIME.
SPOON_BOX_SUDO = env.bool("SPOON_BOX_SUDO", default=False)
# Path of the engine's socket to mount into boxes; unset never mounts it.
SPOON_BOX_DOCKER_SOCKET = env.str("SPOON_BOX_DOCKER_SOCKET", default="")
SPOON_BOX_UID = env.int("SPOON_BOX_UID", default=1000)
# Homes are named volumes unless SPOON_HOMES_DIR names a directory on this
# machine; SPOON_HOST_HOMES_DIR is that directory as the engine's host sees
# it, when Spoon itself runs in a container.
SPOON_HOMES_DIR = env.str("SPOON_HOMES_DIR", default="")
SPOON_HOST_HOMES_DIR = env.str("SPOON_HOST_HOMES_DIR", default="") or SPOON_HOMES_DIR
SPOON_BOX_IDLE_SECONDS = env.int("SPOON_BOX_IDLE_SECONDS", default=1800)
# Open terminals say this long before an idle stop that it is coming.
SPOON_BOX_IDLE_WARNING_SECONDS = env.int("SPOON_BOX_IDLE_WARNING_SECONDS", default=300)
SPOON_BOX_START_TIMEOUT = env.int("SPOON_BOX_START_TIMEOUT", default=30)
SPOON_LEASE_SECONDS = env.int("SPOON_LEASE_SECONDS", default=90)
SPOON_ACTIVITY_WRITE_SECONDS = env.int("SPOON_ACTIVITY_WRITE_SECONDS", default=30)
SPOON_EXEC_OUTPUT_LIMIT = env.int("SPOON_EXEC_OUTPUT_LIMIT", default=4 * 1024 * 1024)
SPOON_TICKETS_PER_MINUTE = env.int("SPOON_TICKETS_PER_MINUTE", default=60)  # per user
SPOON_RUNS_KEPT = env.int("SPOON_RUNS_KEPT", default=500)  # finished runs per user
# Every run ends inside the box at this wall-clock limit (an agent may set its
# own), and an agent turn also after this long without output.
SPOON_RUN_TIMEOUT = env.int("SPOON_RUN_TIMEOUT", default=3600)
SPOON_AGENT_SILENCE_SECONDS = env.int("SPOON_AGENT_SILENCE_SECONDS", default=600)
SPOON_WORKSPACE_URL_SCHEMES = env.list("SPOON_WORKSPACE_URL_SCHEMES", default=["https", "ssh"])

# Dotfiles and secrets are encrypted (AES-256-GCM) with these keys: base64
# of 32 random bytes each, comma-separated; the first encrypts, all decrypt,
# `manage.py rotatekeys` re-encrypts everything under the first.
MAKE_KEY = "python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'"


def _encryption_keys(text: str) -> list[bytes]:
    keys = []
    for number, item in enumerate(filter(None, (k.strip() for k in text.split(","))), 1):
        try:
            key = base64.b64decode(item, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ImproperlyConfigured(
                f"SPOON_ENCRYPTION_KEYS: key {number} is not base64 of 32 bytes. "
                f"Make one with: {MAKE_KEY}"
            )
        keys.append(key)
    if not keys:
        raise ImproperlyConfigured(f"SPOON_ENCRYPTION_KEYS holds no key. Make one with: {MAKE_KEY}")
    return keys


_keys_text = env.str("SPOON_ENCRYPTION_KEYS", default="")
if not _keys_text.strip():
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SPOON_PRODUCTION=true needs SPOON_ENCRYPTION_KEYS (it encrypts dotfiles and "
            f"secrets): make a key with {MAKE_KEY} and put it in the environment."
        )
    _keys_text = _kept(
        DATA_DIR / "encryption_key", lambda: base64.b64encode(os.urandom(32)).decode()
    )
SPOON_ENCRYPTION_KEYS = _encryption_keys(_keys_text)

SPOON_DOTFILE_MAX_BYTES = env.int("SPOON_DOTFILE_MAX_BYTES", default=1024 * 1024)
SPOON_DOTFILES_MAX_TOTAL_BYTES = env.int("SPOON_DOTFILES_MAX_TOTAL_BYTES", default=20 * 1024 * 1024)
SPOON_DOTFILES_MAX_FILES = env.int("SPOON_DOTFILES_MAX_FILES", default=1000)
SPOON_DOTFILES_RUNS_KEPT = env.int("SPOON_DOTFILES_RUNS_KEPT", default=50)
SPOON_DOTFILES_TIMEOUT = env.int("SPOON_DOTFILES_TIMEOUT", default=300)
SPOON_DOTFILES_URL_SCHEMES = env.list("SPOON_DOTFILES_URL_SCHEMES", default=["https", "ssh"])
SPOON_DOTFILES_LOG_LIMIT = env.int("SPOON_DOTFILES_LOG_LIMIT", default=64 * 1024)
SPOON_DOTFILES_APPLY_ON_START = env.bool("SPOON_DOTFILES_APPLY_ON_START", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Access lines name full URLs, and later URLs carry short-lived tickets.
        "django.channels.server": {"level": "WARNING"},
        # Its failures and lockouts are warnings; the rest would be a line per start.
        "axes": {"level": "WARNING"},
    },
}
