// The microphone to a WebSocket: 16 kHz mono 16-bit PCM (worklet.js), the server's JSON messages back.
"use strict";

const Mic = {
  // Open the microphone and the socket; onMessage(json) for each server message, onClose(reason) once.
  async start(path, { onMessage, onClose }) {
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error("this browser gives the microphone only to pages on https or on the machine's own address " +
        "(http://127.0.0.1): start fewshot serve with --tls-cert and --tls-key, or use files");
    }
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    let ctx, source;
    try { // at 16 kHz the browser resamples; some browsers only take the microphone at its own rate ...
      ctx = new AudioContext({ sampleRate: 16000 });
      source = ctx.createMediaStreamSource(media);
    } catch (e) { // ... and then the worklet resamples
      if (ctx) ctx.close();
      ctx = new AudioContext();
      source = ctx.createMediaStreamSource(media);
    }
    await ctx.audioWorklet.addModule("/static/worklet.js");
    const node = new AudioWorkletNode(ctx, "pcm-sender");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${path}`);
    ws.binaryType = "arraybuffer";
    const session = { ws, ctx, media, t0: Infinity, closed: false };
    // wall time (ms) of the stream's first sample: the earliest estimate over blocks is the least delayed
    node.port.onmessage = (ev) => {
      const end = ev.data.first + ev.data.pcm.byteLength / 2;
      session.t0 = Math.min(session.t0, performance.now() - (end / 16000) * 1000);
      if (ws.readyState === WebSocket.OPEN && !session.stopping) ws.send(ev.data.pcm);
    };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data), session);
    ws.onclose = (ev) => {
      Mic.release(session);
      if (!session.closed) {
        session.closed = true;
        onClose(ev.reason || (ev.code === 1000 ? "" : `the connection closed (code ${ev.code})`));
      }
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("cannot reach the server"));
    });
    source.connect(node);
    return session;
  },

  // Ask the server to end (it answers with its last messages, then closes).
  stop(session) {
    if (!session || session.stopping) return;
    session.stopping = true;
    if (session.ws.readyState === WebSocket.OPEN) session.ws.send("stop");
    Mic.release(session);
  },

  release(session) {
    session.media.getTracks().forEach((t) => t.stop());
    if (session.ctx.state !== "closed") session.ctx.close();
  },
};
