// The signed-in learner, per tab: sessionStorage, no cookies (so no CSRF),
// cleared by "Log out", by expiry, and by a 401 from the API.

export interface Session {
  access_token: string;
  user_id: string;
  display_name: string;
  /** RFC 3339. */
  expires_at: string;
}

const KEY = 'learnsphere.session';
const listeners = new Set<() => void>();

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  const raw = storage()?.getItem(KEY);
  if (!raw) return null;
  try {
    const value = JSON.parse(raw) as Partial<Record<keyof Session, unknown>>;
    const { access_token, user_id, display_name, expires_at } = value;
    if (typeof access_token !== 'string' || typeof user_id !== 'string' || typeof display_name !== 'string') {
      throw new Error('malformed session');
    }
    const expires =
      typeof expires_at === 'number' ? expires_at : typeof expires_at === 'string' ? Date.parse(expires_at) : NaN;
    if (Number.isNaN(expires) || expires <= Date.now()) throw new Error('expired session');
    return { access_token, user_id, display_name, expires_at: new Date(expires).toISOString() };
  } catch {
    storage()?.removeItem(KEY);
    return null;
  }
}

export function saveSession(session: Session): void {
  storage()?.setItem(KEY, JSON.stringify(session));
  listeners.forEach((l) => l());
}

export function clearSession(): void {
  const had = storage()?.getItem(KEY) !== null;
  storage()?.removeItem(KEY);
  if (had) listeners.forEach((l) => l());
}

export function onSessionChange(listener: () => void): void {
  listeners.add(listener);
}
