"""The web app: the live demo and the ``fewshot`` command's groups, enrollment and turns in a browser.

``fewshot serve`` (or ``python demo/web.py``) starts it (:mod:`.server`); :mod:`.service` runs the
store and the model for it, :mod:`.app` answers HTTP, :mod:`.sockets` the microphone's WebSockets,
and ``static/`` holds the page (plain HTML and JavaScript, no build step). Needs the extra ``web``.
"""
