"""Boxes on Spoon's network are kept off the engine host's own addresses and
link-local ones (boxes.egress): checked by reading the rules back from the
host's iptables, never by sending a box's traffic anywhere."""

import subprocess
import threading

import pytest

from boxes import docker_engine, egress, labels, lifecycle
from boxes.models import Box
from tests import reliability, workers

NETWORK = f"spoon-test-egress{workers.suffix()}"


def host_rules(*chain: str) -> list[str]:
    """`iptables -S` on this machine, the engine's host."""
    listed = subprocess.run(
        ["iptables", "-w", "10", "-S", *chain], capture_output=True, text=True, check=True
    )
    return listed.stdout.splitlines()


def jumps(bridge: str) -> list[str]:
    chain = egress.chain_for(bridge)
    return [rule for rule in host_rules() if rule.endswith(f"-i {bridge} -j {chain}")]


@pytest.fixture
def bridge(engine, settings):
    """Spoon's network, made afresh, and its bridge; its rules go with it."""
    docker_engine.ensure_isolated_network(NETWORK, labels=labels.of_network())
    bridge, _ = docker_engine.network_bridge(NETWORK)
    egress._checked.clear()
    yield bridge
    egress.remove(NETWORK, settings.SPOON_JOB_IMAGE)
    docker_engine.remove_network(NETWORK)
    assert not [rule for rule in host_rules() if bridge in rule], "removed with no trace"


def test_by_default_a_box_reaches_neither_the_host_nor_link_local_addresses(bridge, settings):
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    chain = egress.chain_for(bridge)
    assert host_rules(chain) == [
        f"-N {chain}",
        f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {chain} -m addrtype --dst-type LOCAL {egress.REJECT}",
        f"-A {chain} -m conntrack --ctstate DNAT {egress.REJECT}",
        f"-A {chain} -d 169.254.0.0/16 {egress.REJECT}",
    ]
    # Traffic to the host itself, and traffic the host forwards, both pass the chain.
    assert sorted(jumps(bridge)) == [
        f"-A DOCKER-USER -i {bridge} -j {chain}",
        f"-A INPUT -i {bridge} -j {chain}",
    ]
    # Other test processes may be putting their own networks' jumps first.
    rules = host_rules("INPUT")[1:]
    ahead = rules[: rules.index(f"-A INPUT -i {bridge} -j {chain}")]
    assert all(" -j SPOON-" in rule for rule in ahead), "before anything that accepts"
    # The engine's own rule for the network: boxes never reach each other.
    assert docker_engine.network_options(NETWORK)["com.docker.network.bridge.enable_icc"] == "false"
    reliability.limit(
        "SPOON_BOX_EGRESS",
        "none: boxes reach neither the host's addresses nor 169.254.0.0/16",
        "rejected at once by the host's firewall (admin-prohibited)",
    )


def test_what_the_operator_allows_is_taken_out_of_the_rules(bridge, settings):
    chain = egress.chain_for(bridge)
    settings.SPOON_BOX_EGRESS = ["host"]
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    assert host_rules(chain)[2:] == [f"-A {chain} -d 169.254.0.0/16 {egress.REJECT}"]
    settings.SPOON_BOX_EGRESS = ["link-local"]
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    assert [rule for rule in host_rules(chain) if "169.254" in rule] == []
    assert len(host_rules(chain)) == 4
    settings.SPOON_BOX_EGRESS = ["host", "link-local"]
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    assert host_rules(chain) == [f"-N {chain}"], "nothing left to keep out"
    settings.SPOON_BOX_EGRESS = []
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    assert len(host_rules(chain)) == 5
    assert len(jumps(bridge)) == 2


def test_processes_writing_the_rules_at_once_leave_one_jump_each(bridge, settings):
    """The web, the reaper and the SSH gateway are processes of their own; each
    writes the rules on its first box start."""
    errors = []

    def install():
        try:
            egress._install(NETWORK, bridge, settings.SPOON_JOB_IMAGE, set())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for _ in range(3):  # a race lost once in a few rounds (two jumps deleted, none left)
        threads = [threading.Thread(target=install) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(jumps(bridge)) == 2
        assert len(host_rules(egress.chain_for(bridge))) == 5


def test_a_firewall_flushed_behind_spoons_back_is_mended_by_the_next_check(
    bridge, settings, monkeypatch
):
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    chain = egress.chain_for(bridge)
    for rule in jumps(bridge):
        subprocess.run(["iptables", "-w", "10", *rule.replace("-A", "-D", 1).split()], check=True)
    subprocess.run(["iptables", "-w", "10", "-F", chain], check=True)
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    assert jumps(bridge) == [], "checked at most every CHECK_SECONDS"
    monkeypatch.setattr(egress, "CHECK_SECONDS", 0)
    egress.ensure(NETWORK, settings.SPOON_JOB_IMAGE)
    assert len(jumps(bridge)) == 2
    assert len(host_rules(chain)) == 5
    reliability.survived(
        "the host's firewall flushed behind Spoon's back",
        "nothing: boxes stay kept off the host",
        "the rules, written again by the next box start after CHECK_SECONDS",
    )


def test_rules_that_cannot_be_written_stop_boxes_with_a_sentence(bridge, settings, caplog):
    with pytest.raises(egress.EgressError, match="Boxes cannot start: the firewall rules"):
        egress.ensure(NETWORK, "spoon-test-missing:none")
    assert jumps(bridge) == []
    settings.SPOON_BOX_EGRESS = ["host", "link-local"]
    egress.ensure(NETWORK, "spoon-test-missing:none")  # nothing to keep out: not fatal
    assert "could not empty" in caplog.text


def test_the_engines_shared_bridge_is_refused_unless_everything_is_allowed(
    engine, make_user, settings
):
    settings.SPOON_BOX_NETWORK = "bridge"
    user = make_user()
    with pytest.raises(lifecycle.BoxError, match="Boxes cannot start: SPOON_BOX_NETWORK=bridge is"):
        lifecycle.ensure_box(user)
    assert docker_engine.container_state(Box.objects.get(user=user).container_name) is None
    settings.SPOON_BOX_EGRESS = ["host", "link-local"]
    egress.ensure("bridge", settings.SPOON_JOB_IMAGE)  # allowed: docker0 is left alone
    assert not [rule for rule in host_rules() if "SPOON-docker0" in rule]


def test_a_network_with_ipv6_is_refused_since_the_rules_are_ipv4(engine, settings):
    name = f"spoon-test-egress-v6{workers.suffix()}"
    subnet = int(workers.suffix()[1:3], 16)  # one of its own, as the name is
    docker_engine._client().networks.create(  # an operator's network, made by hand
        name,
        enable_ipv6=True,
        ipam=docker_engine.docker.types.IPAMConfig(
            pool_configs=[docker_engine.docker.types.IPAMPool(subnet=f"fd00:5:{subnet}::/64")]
        ),
        labels=labels.of_network(),
    )
    try:
        with pytest.raises(egress.EgressError, match="has IPv6"):
            egress.ensure(name, settings.SPOON_JOB_IMAGE)
    finally:
        docker_engine.remove_network(name)
