// systemd notifications (READY=1, WATCHDOG=1, STOPPING=1). Node cannot send
// unix datagrams, so the native addon exports sdNotify (addon/src/sd_notify.cc).

import { loadBinding } from '../addon/binding';

type SdNotifyFn = (state: string) => boolean;

let fn: SdNotifyFn | null | undefined;

function native(): SdNotifyFn | null {
  if (fn === undefined) {
    try {
      const b = loadBinding() as unknown as { sdNotify?: SdNotifyFn };
      fn = typeof b.sdNotify === 'function' ? b.sdNotify : null;
    } catch {
      fn = null;
    }
  }
  return fn;
}

/** Whether systemd asked for notifications (NOTIFY_SOCKET set). */
export function notifyWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof env.NOTIFY_SOCKET === 'string' && env.NOTIFY_SOCKET !== '';
}

/**
 * Sends `state` to $NOTIFY_SOCKET. Returns false when no socket is set, the
 * native function is missing, or the send failed (never throws: a missing
 * notification must not stop the daemon).
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!notifyWanted(env)) return false;
  const f = native();
  if (!f) return false;
  try {
    return f(state);
  } catch {
    return false;
  }
}

/** The watchdog interval systemd expects pings at (half of WATCHDOG_USEC), or null. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

export function hasNativeSdNotify(): boolean {
  return native() !== null;
}
