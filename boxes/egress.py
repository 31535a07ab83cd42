"""What boxes on Spoon's network may reach besides the internet
(SPOON_BOX_EGRESS): by default neither the engine host's own addresses nor
link-local ones (169.254.0.0/16, where clouds serve instance metadata and
its credentials).

The engine has no network option for it, so Spoon writes host firewall
rules: a chain of its own per network, SPOON-<bridge>, jumped to from INPUT
(traffic to the host itself) and from DOCKER-USER (traffic the host
forwards) for packets coming in on the network's bridge. Replies to
connections the box made are let through first. The host's own iptables
writes them, through docker_engine.run_on_engine_host, whenever a box is
created and at most every CHECK_SECONDS per process: a firewall reloaded
since is mended by the next box start.
"""

import logging
import threading
import time

from django.conf import settings

from boxes import docker_engine, labels

logger = logging.getLogger(__name__)

ALLOWANCES = ("host", "link-local")
CHECK_SECONDS = 300
LINK_LOCAL = "169.254.0.0/16"
REJECT = "-j REJECT --reject-with icmp-admin-prohibited"  # fails at once, unlike DROP

_checked: dict[tuple, float] = {}
_lock = threading.Lock()


class EgressError(Exception):
    """The rules could not be put in place; the message says why and what to do."""


def allowed() -> set[str]:
    return set(settings.SPOON_BOX_EGRESS)


def chain_for(bridge: str) -> str:
    return f"SPOON-{bridge}"[:28]  # iptables' limit on chain names


def rules(chain: str, allowing: set[str]) -> list[str]:
    """The chain's rules, as iptables-restore lines."""
    blocked = []
    if "host" not in allowing:
        blocked.append(f"-A {chain} -m addrtype --dst-type LOCAL {REJECT}")
        # The host's published ports: rewritten to a container, they are forwarded.
        blocked.append(f"-A {chain} -m conntrack --ctstate DNAT {REJECT}")
    if "link-local" not in allowing:
        blocked.append(f"-A {chain} -d {LINK_LOCAL} {REJECT}")
    if not blocked:
        return []
    return [f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", *blocked]


# One writer at a time on the host (web, reaper and SSH gateway processes
# each write on their first box start), where it has flock.
LOCKED = """ipt() { iptables -w 10 "$@"; }
if command -v flock >/dev/null 2>&1; then
    exec 9>/run/spoon-egress.lock
    flock -w 30 9
fi
"""


def _install_script(bridge: str, chain: str, lines: list[str]) -> str:
    if not lines:
        return f"iptables -w 10 -F {chain} 2>/dev/null || true"
    restore = "\n".join(["*filter", f":{chain} - [0:0]", *lines, "COMMIT"])
    jump = f"-i {bridge} -j {chain}"
    # Declaring the chain to iptables-restore empties and refills it in one step.
    return f"""set -e
{LOCKED}
iptables-restore -w 10 --noflush <<'RULES'
{restore}
RULES
forward=DOCKER-USER
ipt -n -L DOCKER-USER >/dev/null 2>&1 || forward=FORWARD
for parent in "$forward" INPUT; do
    ipt -C "$parent" {jump} 2>/dev/null || ipt -I "$parent" {jump}
done
ipt -S {chain}
"""


def _remove_script(bridge: str, chain: str) -> str:
    jump = f"-i {bridge} -j {chain}"
    return f"""{LOCKED}
for parent in DOCKER-USER FORWARD INPUT; do
    while ipt -D "$parent" {jump} 2>/dev/null; do :; done
done
ipt -F {chain} 2>/dev/null; ipt -X {chain} 2>/dev/null; true
"""


def ensure(network: str, image: str) -> None:
    """Before a box joins `network`, made from `image`: its rules are in place."""
    if network == "none":
        return
    allowing = allowed()
    everything = set(ALLOWANCES) <= allowing
    if network == "bridge":
        if everything:
            return
        raise EgressError(
            "Boxes cannot start: SPOON_BOX_NETWORK=bridge is the engine's shared network, "
            "where Spoon cannot keep boxes off this host without cutting off other containers. "
            "An operator can use Spoon's own network, or set SPOON_BOX_EGRESS=host,link-local."
        )
    bridge, ipv6 = docker_engine.network_bridge(network)
    if ipv6 and not everything:
        raise EgressError(
            f"Boxes cannot start: the network {network} has IPv6, which Spoon's egress rules "
            "do not cover. An operator can use a network without it, or set "
            "SPOON_BOX_EGRESS=host,link-local."
        )
    key = (bridge, frozenset(allowing))
    with _lock:
        if time.monotonic() - _checked.get(key, float("-inf")) < CHECK_SECONDS:
            return
        _install(network, bridge, image, allowing)
        _checked[key] = time.monotonic()


def _install(network: str, bridge: str, image: str, allowing: set[str]) -> None:
    chain = chain_for(bridge)
    lines = rules(chain, allowing)
    script = _install_script(bridge, chain, lines)
    try:
        written = _run(image, script)
    except docker_engine.EngineError as exc:
        if not lines:  # nothing to keep out: an empty chain left in place is no harm
            logger.warning("egress: could not empty %s for %s: %s", chain, network, exc)
            return
        raise EgressError(
            f"Boxes cannot start: the firewall rules that keep them off this host's own "
            f"addresses could not be written ({exc}). An operator can start them without "
            "by setting SPOON_BOX_EGRESS=host,link-local."
        ) from exc
    now = " | ".join(written.strip().splitlines()) or "nothing kept out"
    logger.info("egress: %s (%s) now reads: %s", network, bridge, now)


def remove(network: str, image: str) -> None:
    """Take the network's chain and its jumps away (before the network goes)."""
    bridge, _ = docker_engine.network_bridge(network)
    script = _remove_script(bridge, chain_for(bridge))
    _run(image, script)
    with _lock:
        for key in [key for key in _checked if key[0] == bridge]:
            del _checked[key]


def _run(image: str, script: str) -> str:
    return docker_engine.run_on_engine_host(image, ["sh", "-c", script], labels.of_helper("egress"))
