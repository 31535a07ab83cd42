"""Operators' view of boxes. What the engine knows is shown live (one
container-list call per page), and fields that mirror the engine are
read-only: editing them would lie about it."""

import contextvars

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from boxes import audit, docker_engine, labels, lifecycle, quota, reaper
from boxes.models import Box, Lease, RegisteredImage, StaffAction

# What the engine said (containers, image references) for the page being
# rendered: the ModelAdmin is shared between requests, so it cannot hold it.
_page_containers = contextvars.ContextVar("page_containers", default=None)
_page_image_refs = contextvars.ContextVar("page_image_refs", default=None)


def rendered_with(page_value: contextvars.ContextVar, value, view, request, *args):
    """Call an admin view with value in page_value, and render it then: a
    TemplateResponse would otherwise render after the value is gone."""
    token = page_value.set(value)
    try:
        response = view(request, *args)
        return response.render() if hasattr(response, "render") else response
    finally:
        page_value.reset(token)


def once_per_request(request, name: str, ask_engine):
    """ask_engine() the first time a request needs it; None when the engine is down."""
    if not hasattr(request, name):
        try:
            setattr(request, name, ask_engine())
        except docker_engine.EngineError:
            setattr(request, name, None)
    return getattr(request, name)


def engine_containers(request) -> dict[str, docker_engine.ContainerState] | None:
    """This installation's containers, listed once per request; None when down."""

    def listed():
        found = docker_engine.list_containers(labels.this_installations_boxes())
        return {c.name: c for c in found}

    return once_per_request(request, "_spoon_containers", listed)


def live_state(box: Box, containers) -> str:
    if containers is None:
        return "engine unreachable"
    found = containers.get(box.container_name)
    if found is None:
        return "missing" if box.state == Box.State.RUNNING else "stopped"
    if not found.running:
        return "stopped"
    return "update pending" if box.update_pending else "running"


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(s, s) for s in ("running", "stopped", "missing", "update pending")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        containers = engine_containers(request)
        wanted = [b.pk for b in queryset if live_state(b, containers) == self.value()]
        return queryset.filter(pk__in=wanted)


class LeaseInline(admin.TabularInline):
    model = Lease
    extra = 0
    can_delete = False
    fields = readonly_fields = ("kind", "holder", "acquired_at", "renewed_at", "expires_at")

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).live()


class BoxForm(forms.ModelForm):
    """A box's image can only be a registered one (or the job image): the
    admin is not a quieter way to put something else in a user's box."""

    class Meta:
        model = Box
        fields = ["image"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "the job image (SPOON_JOB_IMAGE)")]
        choices += [(i.ref, f"{i.name} ({i.ref})") for i in RegisteredImage.objects.all()]
        current = self.instance.image
        if current and current not in dict(choices):
            choices.append((current, f"{current} (not registered: keep it or choose another)"))
        self.fields["image"] = forms.ChoiceField(
            choices=choices,
            required=False,
            help_text="This user's image. Changing it is recorded and shown to them.",
        )


@admin.register(Box)
class BoxAdmin(admin.ModelAdmin):
    list_display = (
        "container_name",
        "user",
        "engine_state",
        "running_image",
        "started",
        "held_by",
        "idle",
        "home",
    )
    list_filter = (StateFilter,)
    search_fields = ("username", "user__username")
    readonly_fields = (
        "user",
        "username",
        "engine_state",
        "state",
        "running_image",
        "running_image_id",
        "container_id",
        "update_pending",
        "created_at",
        "started_at",
        "stopped_at",
        "last_activity_at",
        "last_error",
        "home",
        "home_measured_at",
    )
    fields = ("image",) + readonly_fields
    form = BoxForm
    inlines = [LeaseInline]
    actions = ["stop_boxes", "restart_boxes", "recreate_boxes", "reap_now"]

    def changelist_view(self, request, extra_context=None):
        containers = engine_containers(request)
        view = super().changelist_view
        return rendered_with(_page_containers, containers, view, request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        containers = engine_containers(request)
        view = super().change_view
        return rendered_with(
            _page_containers, containers, view, request, object_id, form_url, extra_context
        )

    def get_queryset(self, request):
        live = Lease.objects.live().order_by("acquired_at")
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .prefetch_related(Prefetch("leases", queryset=live, to_attr="live_leases"))
        )

    def has_add_permission(self, request):
        return False  # a box is made by using it, or by `manage.py ensurebox`

    def save_model(self, request, obj, form, change):
        old = Box.objects.filter(pk=obj.pk).values_list("image", flat=True).first() or ""
        super().save_model(request, obj, form, change)
        if obj.image != old:
            detail = f"image: {old or 'the job image'} -> {obj.image or 'the job image'}"
            audit.changed(request.user, StaffAction.What.BOX_IMAGE, detail, owner=obj.user)

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if settings.SPOON_HOME_QUOTA_BYTES is None:
            shown = tuple(name for name in shown if name != "home")  # a narrower list
        if request.user.has_perm("boxes.open_user_terminal"):
            shown = (*shown, "open_terminal")
        return shown

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if request.user.has_perm("boxes.open_user_terminal"):
            fields = ("open_terminal", *fields)
        return fields

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "open_terminal")

    @admin.display(description="terminal")
    def open_terminal(self, box):
        url = reverse("terminal:user", args=[box.user_id])
        return format_html(
            '<a href="{}" target="_blank" rel="noopener" aria-label="Open {}\'s terminal">Open</a>',
            url,
            box.user,
        )

    @admin.display(description="started", ordering="started_at")
    def started(self, box):
        if not box.started_at:
            return "-"
        return date_format(timezone.localtime(box.started_at), "M j, H:i")

    @admin.display(description="state")
    def engine_state(self, box):
        return live_state(box, _page_containers.get())

    @admin.display(description="held by")
    def held_by(self, box):
        """What holds it now: each live lease's kind, its holder on hover;
        a staff member's name in full, so staff access shows in the list."""
        if not box.live_leases:
            return "-"
        return format_html_join(
            ", ",
            '<span title="{}">{}</span>',
            (
                (
                    lease.holder,
                    f"staff: {lease.holder}" if lease.kind == Lease.Kind.STAFF else lease.kind,
                )
                for lease in box.live_leases
            ),
        )

    @admin.display(description="home", ordering="home_bytes")
    def home(self, box):
        """What the home takes (measured by boxes.quota), and past its quota."""
        found = quota.usage(box)
        if found.used is None:
            return "-"
        return f"{quota.size(found.used)}, over its quota" if found.over else quota.size(found.used)

    @admin.display(description="idle", ordering="last_activity_at")
    def idle(self, box):
        """Since when nothing has happened in it; an open, silent terminal
        does not count, a run or an apply does."""
        if live_state(box, _page_containers.get()) not in ("running", "update pending"):
            return "-"
        if any(lease.kind not in Lease.BY_TRAFFIC for lease in box.live_leases):
            return "in use"
        return f"for {timesince(box.last_activity_at)}"

    def _each(self, request, queryset, action, verb):
        for box in queryset:
            try:
                action(box)
                self.message_user(request, f"{verb} {box.container_name}.")
            except (docker_engine.EngineError, lifecycle.BoxError) as exc:
                self.message_user(request, f"{box.container_name}: {exc}", messages.ERROR)

    @admin.action(description="Stop (the home is kept)")
    def stop_boxes(self, request, queryset):
        self._each(request, queryset, lifecycle.stop_box, "Stopped")

    @admin.action(description="Restart")
    def restart_boxes(self, request, queryset):
        self._each(request, queryset, lifecycle.restart_box, "Restarted")

    @admin.action(description="Recreate on the current image (the home is kept)")
    def recreate_boxes(self, request, queryset):
        self._each(request, queryset, lifecycle.recreate_box, "Recreated")

    @admin.action(description="Reap now (stop every idle box, reconcile)")
    def reap_now(self, request, queryset):
        try:
            report = reaper.reap()
        except docker_engine.EngineError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        for line in report.lines:
            self.message_user(request, line)
        self.message_user(request, report.summary())


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ("box", "kind", "holder", "acquired_at", "renewed_at", "expires_at", "is_live")
    list_filter = ("kind",)
    readonly_fields = ("box", "kind", "holder", "acquired_at", "renewed_at", "expires_at")

    def has_add_permission(self, request):
        return False

    @admin.display(boolean=True, description="live")
    def is_live(self, lease):
        return lease.is_live


def engine_image_refs(request) -> set[str] | None:
    """The engine's image references, listed once per request; None when down."""
    return once_per_request(request, "_spoon_image_refs", docker_engine.image_refs)


def image_presence(ref: str, refs: set[str] | None) -> str:
    if refs is None:
        return "engine unreachable"
    name_only = "@" not in ref and ":" not in ref.rpartition("/")[2]
    return "present" if (f"{ref}:latest" if name_only else ref) in refs else "missing"


@admin.register(RegisteredImage)
class RegisteredImageAdmin(admin.ModelAdmin):
    """What users may pick for their workspaces. Spoon registers the stacks it
    builds and `manage.py buildimage`'s images; operators add others here.
    (The workspaces app adds a column: how many workspaces use each.)"""

    list_display = ("name", "ref", "engine_presence", "offered", "description")
    list_editable = ("offered",)
    search_fields = ("name", "ref", "description")
    readonly_fields = ("built_from", "packages", "created_at")
    actions = ["pull_images"]

    def changelist_view(self, request, extra_context=None):
        refs = engine_image_refs(request)
        view = super().changelist_view
        return rendered_with(_page_image_refs, refs, view, request, extra_context)

    @admin.display(description="in the engine")
    def engine_presence(self, image):
        return image_presence(image.ref, _page_image_refs.get())

    def save_model(self, request, obj, form, change):
        old = RegisteredImage.objects.filter(pk=obj.pk).values_list("ref", flat=True).first()
        super().save_model(request, obj, form, change)
        if old is not None and old != obj.ref:  # what every box on it runs changes
            detail = f"the image {obj.name}: {old} -> {obj.ref}"
            audit.changed(request.user, StaffAction.What.IMAGE, detail)
        if image_presence(obj.ref, engine_image_refs(request)) == "missing":
            self.message_user(
                request,
                f'{obj.ref} is not in the engine yet: use the action "Pull from its '
                f'registry", or build it, before users pick it.',
                messages.WARNING,
            )

    @admin.action(description="Pull from its registry")
    def pull_images(self, request, queryset):
        for image in queryset:
            try:
                found = docker_engine.pull_image(image.ref)
                self.message_user(request, f"Pulled {image.ref} ({found}).")
            except docker_engine.EngineError as exc:
                self.message_user(request, f"{image.ref}: {exc}", messages.ERROR)


@admin.register(StaffAction)
class StaffActionAdmin(admin.ModelAdmin):
    """The record of staff access: read here, never written or erased here."""

    list_display = ("started_at", "staff_name", "what", "owner", "detail", "how_long")
    list_filter = ("what",)
    search_fields = ("staff_name", "owner__username", "detail")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
