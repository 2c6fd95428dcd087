// @ts-check
// A message frame's payload as the row shows it. Frames carry `data` as text
// when it is valid UTF-8, else base64 (`encoding`); the page shows either as
// text or as hex, cut to a width a row can hold.

const SHOWN_BYTES = 96;

/**
 * The payload's bytes.
 * @param {string} data
 * @param {string} encoding  'utf8' | 'base64'
 * @returns {Uint8Array}
 */
export function payloadBytes(data, encoding) {
  if (encoding === 'base64') {
    const bin = atob(data);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new TextEncoder().encode(data);
}

/** @param {Uint8Array} bytes */
export function hex(bytes) {
  let s = '';
  const n = Math.min(bytes.length, SHOWN_BYTES);
  for (let i = 0; i < n; i++) s += (i ? ' ' : '') + bytes[i].toString(16).padStart(2, '0');
  return bytes.length > n ? `${s} …` : s;
}

/**
 * @param {{ data: string, encoding: string }} frame
 * @param {boolean} asHex
 * @returns {string}
 */
export function payloadText(frame, asHex) {
  if (asHex || frame.encoding !== 'utf8') {
    const shown = hex(payloadBytes(frame.data, frame.encoding));
    return asHex ? shown : `(binary) ${shown}`;
  }
  // Control characters would break the row; show them as their code points.
  // eslint-disable-next-line no-control-regex
  const text = frame.data.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return text.length > SHOWN_BYTES * 2 ? `${text.slice(0, SHOWN_BYTES * 2)} …` : text;
}
