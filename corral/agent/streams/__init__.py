"""The node's streams, as the kubelet serves them to the API server:

    master ──websocket──► endpoints.py ──► exec.py     command in the container's env
            (relayed                   ├──► attach.py   the container's output
             kubectl / client)         └──► portforward.py ── spdy.py ──TCP──► pod's host port
                                              channels.py: the v4/v5 channel protocol
"""
