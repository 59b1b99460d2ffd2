"""Plugins declare what they run after, before and require; the resolved order honours it or start-up fails."""

from __future__ import annotations

from typing import Any

import pyservice
import pytest
from pyservice import ApiError, Plugin
from pyservice.testing import client_for


def recording(name: str, calls: list[str], **attributes: Any) -> type[Plugin]:
    """A plugin whose request hook records its name on the way in."""

    def setup(self: Plugin, owner: Any) -> None:
        @owner.plugin("request", name=self.name)
        def hook(context: Any) -> None:
            calls.append(f"{owner.side}:{self.name}")
            context.process_request()

    return type(f"{name.title()}Plugin", (Plugin,), {"name": name, "setup": setup, **attributes})


def service_with(classes: list[type[Plugin]], listed: list[str]) -> pyservice.Service:
    service = pyservice.Service(operations=["op"], plugins={name: {} for name in listed}, available_plugins=classes)
    service.operation("op")(lambda request, response, context: None)
    return service


def order(service: pyservice.Service) -> list[str]:
    return [plugin.name for plugin in service.plugins]


def test_without_declarations_the_listing_is_the_order():
    calls: list[str] = []
    service = service_with([recording(n, calls) for n in "abc"], ["c", "a", "b"])
    assert order(service) == ["c", "a", "b"]
    assert [placement.reason for placement in service.placements] == [
        "listed 1st in plugins",
        "listed 2nd in plugins",
        "listed 3rd in plugins",
    ]


def test_a_plugin_listed_before_the_one_it_must_run_after_is_moved_inside_it(wsgi):
    calls: list[str] = []
    auth = recording("auth", calls)
    throttle = recording("throttle", calls, after=("auth",))
    service = service_with([auth, throttle], ["throttle", "auth"])
    assert order(service) == ["auth", "throttle"]
    assert wsgi(service.wsgi_application, "/api/v1/op").status == 200
    assert calls == ["service:auth", "service:throttle"]
    (first, second) = service.placements
    assert first.reason == "listed 2nd in plugins, moved; before throttle (ThrottlePlugin.after)"
    assert second.reason == "listed 1st in plugins, moved; after auth (ThrottlePlugin.after)"


def test_a_before_declaration_moves_the_declaring_plugin_outside():
    calls: list[str] = []
    logging = recording("logging", calls, before=("auth",))
    auth = recording("auth", calls)
    service = service_with([logging, auth], ["auth", "logging"])
    assert order(service) == ["logging", "auth"]
    assert service.placements[1].constraints == ("after logging (LoggingPlugin.before)",)


def test_the_client_side_follows_the_same_order():
    calls: list[str] = []
    classes = [recording("auth", calls), recording("throttle", calls, after=("auth",))]
    service = service_with(classes, ["throttle", "auth"])
    client = client_for(service, available_plugins=classes)
    assert [plugin.name for plugin in client.plugins] == ["auth", "throttle"]
    client.op()
    assert calls == ["client:auth", "client:throttle", "service:auth", "service:throttle"]


def test_unrelated_plugins_keep_their_listed_order_around_a_move():
    calls: list[str] = []
    classes = [recording("a", calls), recording("b", calls, after=("d",)), recording("c", calls), recording("d", calls)]
    service = service_with(classes, ["a", "b", "c", "d"])
    assert order(service) == ["a", "c", "d", "b"]


def test_a_declaration_about_a_plugin_that_is_not_enabled_is_ignored():
    calls: list[str] = []
    service = service_with([recording("throttle", calls, after=("auth",), before=("cache",))], ["throttle"])
    assert order(service) == ["throttle"]
    assert service.placements[0].reason == "listed 1st in plugins"


def test_a_required_plugin_that_is_not_enabled_fails_naming_it():
    with pytest.raises(ApiError) as raised:
        service_with([recording("throttle", [], requires=("auth",))], ["throttle"])
    assert raised.value.key == "plugins.throttle"
    assert "requires the plugin 'auth' (ThrottlePlugin.requires)" in str(raised.value)


def test_a_required_plugin_that_is_enabled_is_accepted_wherever_it_is_listed():
    calls: list[str] = []
    classes = [recording("auth", calls), recording("throttle", calls, requires=("auth",))]
    assert order(service_with(classes, ["throttle", "auth"])) == ["throttle", "auth"]


def test_contradicting_declarations_fail_naming_the_cycle():
    classes = [recording("auth", [], after=("throttle",)), recording("throttle", [], after=("auth",))]
    with pytest.raises(ApiError) as raised:
        service_with(classes, ["auth", "throttle"])
    assert raised.value.key == "plugins"
    message = str(raised.value)
    assert "contradict" in message
    assert "auth must run after throttle (AuthPlugin.after)" in message
    assert "throttle must run after auth (ThrottlePlugin.after)" in message


def test_a_longer_cycle_through_before_declarations_is_named():
    classes = [
        recording("a", [], after=("c",)),
        recording("b", [], after=("a",)),
        recording("c", [], before=("b",), after=("b",)),
    ]
    with pytest.raises(ApiError, match="both in after and in before"):
        service_with(classes, ["a", "b", "c"])
    classes[2] = recording("c", [], after=("b",))
    with pytest.raises(ApiError, match=r"a must run after c .*c must run after b .*b must run after a"):
        service_with(classes, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({"after": "auth"}, "must be a tuple of plugin names, got 'auth'"),
        ({"before": [1]}, "must be a tuple of plugin names"),
        ({"requires": ("me",)}, "names the plugin itself"),
    ],
)
def test_malformed_declarations_are_refused(attributes, words):
    with pytest.raises(ApiError, match=words):
        service_with([recording("me", [], **attributes), recording("auth", [])], ["me", "auth"])


def innermost_cache(calls: list[str]) -> type[Plugin]:
    """Answers every call from the request scope, innermost, without continuing it."""

    def setup(self: Plugin, owner: Any) -> None:
        @owner.plugin("request", name=self.name, innermost=True)
        def hit(context: Any) -> None:
            calls.append("cache")
            context.response.cached = True

    return type("CachePlugin", (Plugin,), {"name": "cache", "setup": setup})


def test_a_plugin_declared_after_an_innermost_one_is_made_innermost_after_it(wsgi):
    calls: list[str] = []
    classes = [recording("stats", calls, after=("cache",)), innermost_cache(calls), recording("auth", calls)]
    service = service_with(classes, ["stats", "cache", "auth"])

    @service.plugin("request")
    def application(context: Any) -> None:
        calls.append("application")
        context.process_request()

    assert wsgi(service.wsgi_application, "/api/v1/op").json() == {"cached": True}
    # A cache hit never reaches the hook that must run after the cache.
    assert calls == ["service:auth", "application", "cache"]
    lines = service.describe_chain().splitlines()
    assert lines[1:5] == [
        "  request   plugin auth",
        "  request   hook "
        "test_a_plugin_declared_after_an_innermost_one_is_made_innermost_after_it.<locals>.application",
        "  request   plugin cache  (listed 2nd in plugins, moved; before stats (StatsPlugin.after); innermost=True)",
        "  request   plugin stats  (listed 1st in plugins, moved; after cache (StatsPlugin.after); "
        "innermost, as cache's request hook is)",
    ]


def test_a_plugin_declared_before_an_innermost_one_stays_in_its_place(wsgi):
    calls: list[str] = []
    classes = [innermost_cache(calls), recording("auth", calls, before=("cache",))]
    service = service_with(classes, ["cache", "auth"])
    wsgi(service.wsgi_application, "/api/v1/op")
    assert calls == ["service:auth", "cache"]


def test_describe_order_says_why_each_plugin_sits_where_it_does():
    classes = [recording("auth", []), recording("throttle", [], after=("auth",)), recording("logging", [])]
    service = service_with(classes, ["throttle", "logging", "auth"])
    assert service.describe_order().splitlines() == [
        "service service v1 plugins, outermost first:",
        "  1. logging   listed 2nd in plugins",
        "  2. auth      listed 3rd in plugins, moved; before throttle (ThrottlePlugin.after)",
        "  3. throttle  listed 1st in plugins, moved; after auth (ThrottlePlugin.after)",
    ]


def test_describe_order_without_plugins_says_so():
    assert pyservice.Service(operations=[]).describe_order() == "service service v1: no plugins\n"


@pytest.mark.parametrize(
    ("listed", "words"),
    [
        (0, "listed 1st"),
        (1, "listed 2nd"),
        (2, "listed 3rd"),
        (3, "listed 4th"),
        (10, "listed 11th"),
        (11, "listed 12th"),
        (12, "listed 13th"),
        (20, "listed 21st"),
        (21, "listed 22nd"),
        (111, "listed 112th"),
    ],
)
def test_a_placement_names_its_listed_position_in_words(listed, words):
    from pyservice import Placement

    assert Placement("p", listed, listed).reason == f"{words} in plugins"


def test_pyservice_chain_says_why_a_declared_plugin_sits_where_it_does(monkeypatch, capsys):
    from pathlib import Path

    from pyservice._cli import main

    apps = Path(__file__).parent / "apps"
    monkeypatch.chdir(apps)
    monkeypatch.syspath_prepend(str(apps))
    assert main(["chain", "ordered_app:service", "op"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  request   plugin auth  (listed 2nd in plugins, moved; before throttle (Throttle.after))" in lines
    assert "  request   plugin throttle  (listed 1st in plugins, moved; after auth (Throttle.after))" in lines


def test_pyservice_chain_verbose_lists_every_plugin_in_order_with_its_reason(monkeypatch, capsys):
    from pathlib import Path

    from pyservice._cli import main

    apps = Path(__file__).parent / "apps"
    monkeypatch.chdir(apps)
    monkeypatch.syspath_prepend(str(apps))
    assert main(["chain", "ordered_app:service", "--verbose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(next(line for line in lines if line.endswith("plugins, outermost first:")))
    assert lines[start + 1].split()[:2] == ["1.", "auth"]
    assert lines[start + 2].split()[:2] == ["2.", "throttle"]
    assert "after auth (Throttle.after)" in lines[start + 2]


def test_pyservice_plugins_flags_an_installed_plugin_that_cannot_load(monkeypatch, capsys):
    from pyservice import _cli
    from pyservice._plugin import InstalledPlugin

    broken = InstalledPlugin("broken", "nowhere:Broken", "pyservice-broken", "1.0", "cannot import 'nowhere'")
    monkeypatch.setattr(_cli, "installed_plugins", lambda check=False: [broken])
    assert _cli.main(["plugins"]) == 0
    assert "  ! cannot import 'nowhere'" in capsys.readouterr().out.splitlines()
