// Formatting shared by the app and the console. Fixed to en-US so the page
// reads the same everywhere ("$19.99", "Page 2 of 13").

const LOCALE = 'en-US';

export function formatPrice(priceCents: number, currency: string): string {
  if (priceCents === 0) return 'Free';
  try {
    return new Intl.NumberFormat(LOCALE, { style: 'currency', currency }).format(priceCents / 100);
  } catch {
    // An unknown currency code: still show the amount.
    return `${(priceCents / 100).toFixed(2)} ${currency}`;
  }
}

const percentFormat = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });

/** `percent` is 0–100 ("25%", "33.3%"). */
export function formatPercent(percent: number): string {
  return `${percentFormat.format(percent)}%`;
}

const numberFormat = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });

export function formatNumber(value: number): string {
  return numberFormat.format(value);
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  const rest = s % 60;
  if (m === 0) return `${rest} s`;
  return rest === 0 ? `${m} min` : `${m} min ${rest} s`;
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
