"""The labels Spoon puts on what it makes in the engine, built here only.

They let one container-list call find this installation's boxes (two
installations sharing an engine never touch each other's), tell whose box
or home a container or volume is when its row is gone, and say which image
a box was made from.
"""

from django.conf import settings

INSTANCE = "spoon.instance"
USER = "spoon.user"


def of_box(username: str, user_id: int, ref: str, image_id: str) -> dict[str, str]:
    return {
        "spoon.box": "1",
        INSTANCE: settings.SPOON_INSTANCE,
        USER: username,
        "spoon.user_id": str(user_id),
        "spoon.image": f"{ref}@{image_id}",
    }


def of_home(username: str) -> dict[str, str]:
    return {"spoon.home": "1", INSTANCE: settings.SPOON_INSTANCE, USER: username}


def of_network() -> dict[str, str]:
    return {"spoon.network": "1", INSTANCE: settings.SPOON_INSTANCE}


def of_helper(purpose: str) -> dict[str, str]:
    return {"spoon.helper": purpose, INSTANCE: settings.SPOON_INSTANCE}


def this_installations_boxes() -> dict[str, str]:
    """What every box of this installation carries: the filter that lists them."""
    return {"spoon.box": "1", INSTANCE: settings.SPOON_INSTANCE}
