// The microphone's samples, as 16-bit PCM at 16 kHz in messages of 100 ms, posted to the page
// with the index of their first sample (the page sends them over a WebSocket).
const RATE = 16000;
const BLOCK = 1600;

class PcmSender extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / RATE; // input samples per output sample (1 when the context runs at 16 kHz)
    this.pos = 0; // where the next output sample falls, in input samples since the last call's start
    this.last = 0; // the previous call's last input sample (for interpolation across calls)
    this.block = new Int16Array(BLOCK);
    this.filled = 0;
    this.sent = 0; // output samples posted so far
  }

  push(x) {
    const v = Math.max(-1, Math.min(1, x));
    this.block[this.filled++] = v < 0 ? v * 32768 : v * 32767;
    if (this.filled === BLOCK) {
      this.port.postMessage({ first: this.sent, pcm: this.block.buffer }, [this.block.buffer]);
      this.sent += BLOCK;
      this.block = new Int16Array(BLOCK);
      this.filled = 0;
    }
  }

  process(inputs) {
    const x = inputs[0] && inputs[0][0];
    if (!x) return true;
    if (this.step === 1) {
      for (let i = 0; i < x.length; i++) this.push(x[i]);
      return true;
    }
    // another rate: average the input samples that fall in each output sample (a box filter, then decimate)
    while (this.pos + this.step <= x.length) {
      const a = Math.floor(this.pos), b = Math.floor(this.pos + this.step);
      let sum = 0;
      for (let i = a; i < b; i++) sum += i < 0 ? this.last : x[i];
      this.push(sum / Math.max(1, b - a));
      this.pos += this.step;
    }
    this.pos -= x.length;
    this.last = x[x.length - 1];
    return true;
  }
}

registerProcessor("pcm-sender", PcmSender);
