"""Which Socket.IO namespaces a replay CONNECTs over polling before upgrading: pure."""

from __future__ import annotations

from wsshadow.replay.engine.engineio import polling_connects, socketio_namespaces


def test_namespaces_used_are_found_main_first() -> None:
    payloads = ['42/chat,["hi"]', "40", '43/admin,1["ok"]', "2probe"]
    assert socketio_namespaces(payloads) == ["/", "/chat", "/admin"]


def test_a_namespace_connected_on_the_websocket_is_not_connected_over_polling() -> None:
    # The client upgraded first and CONNECTed on the WebSocket: nothing to do over polling.
    directions = ["client", "server", "client", "client", "server", "client"]
    payloads = ["2probe", "3probe", "5", "40{}", '40{"sid":"x"}', '42["create",{}]']
    assert polling_connects(directions, payloads) == []
    # Every CONNECT form: plain, with auth, in a namespace, in a namespace with auth.
    for connect, namespace in (("40", "/"), ('40{"token":"t"}', "/"), ("40/chat,", "/chat"),
                               ('40/chat,{"token":"t"}', "/chat")):  # fmt: skip
        found = polling_connects(["client", "client"], [connect, '42/chat,["hi"]'])
        assert namespace not in found


def test_a_namespace_connected_over_polling_is_connected_again_by_the_replay() -> None:
    # The recorded WebSocket starts after the CONNECT went over polling: the replay does it.
    directions = ["client", "server", "client", "client"]
    payloads = ["2probe", "3probe", "5", '42/chat,["hi"]']
    assert polling_connects(directions, payloads) == ["/", "/chat"]
    # A server's CONNECT answer is no client CONNECT.
    assert polling_connects(["server", "client"], ['40{"sid":"x"}', '42["hi"]']) == ["/"]
