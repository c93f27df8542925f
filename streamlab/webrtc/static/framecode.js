// streamlab frame code reader for a canvas ImageData (same layout as streamlab/framecode.py).
// readFrameCode(imageData, width, height, nowMs, frameWidth) -> {seq, capturedMs} | null
// imageData may hold just the top-left code region (width x height pixels) of a frame
// frameWidth pixels wide; frameWidth defaults to width (the whole frame).
(function (global) {
  "use strict";
  var COLS = 12, ROWS = 6, DARK_MAX = 96, BRIGHT_MIN = 160;

  function crc16(bytes) {
    var crc = 0xffff;
    for (var i = 0; i < bytes.length; i++) {
      crc ^= bytes[i] << 8;
      for (var b = 0; b < 8; b++) {
        crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
      }
    }
    return crc;
  }

  function readFrameCode(imageData, width, height, nowMs, frameWidth) {
    var full = frameWidth === undefined ? width : frameWidth;
    var cell = Math.max(8, Math.floor(full / 40));
    if (full < 320 || width < (COLS + 2) * cell || height < (ROWS + 2) * cell) return null;
    var data = imageData.data, lo = Math.floor(cell / 4), hi = cell - Math.floor(cell / 4);
    var bits = [];
    for (var r = 0; r < ROWS; r++) {
      for (var c = 0; c < COLS; c++) {
        var sum = 0, n = 0;
        for (var y = cell + r * cell + lo; y < cell + r * cell + hi; y++) {
          for (var x = cell + c * cell + lo; x < cell + c * cell + hi; x++) {
            var i = (y * width + x) * 4;
            sum += (data[i] + data[i + 1] + data[i + 2]) / 3;
            n++;
          }
        }
        var mean = sum / n;
        if (mean > DARK_MAX && mean < BRIGHT_MIN) return null;
        bits.push(mean >= 128 ? 1 : 0);
      }
    }
    var bytes = [];
    for (var k = 0; k < 9; k++) {
      var v = 0;
      for (var j = 0; j < 8; j++) v = (v << 1) | bits[k * 8 + j];
      bytes.push(v);
    }
    if (crc16(bytes.slice(0, 7)) !== ((bytes[7] << 8) | bytes[8])) return null;
    var seq = (bytes[0] << 16) | (bytes[1] << 8) | bytes[2];
    var low = ((bytes[3] * 256 + bytes[4]) * 256 + bytes[5]) * 256 + bytes[6];
    var modulus = 4294967296, now = nowMs === undefined ? Date.now() : nowMs;
    var delta = (((low - now) % modulus) + modulus) % modulus;
    if (delta >= modulus / 2) delta -= modulus;
    return { seq: seq, capturedMs: now + delta };
  }

  global.readFrameCode = readFrameCode;
})(typeof window !== "undefined" ? window : globalThis);
