// A small element builder. Text is always set with text nodes (never
// innerHTML), so strings from the API cannot become markup.

export type Child = Node | string | number | null | undefined | false;
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | null | undefined | Handler>;

/**
 * Builds an element. `props`: `class`, `id`, `href`, any attribute, boolean
 * attributes (`true` sets, `false`/`null`/`undefined` skips), and `on<event>`
 * handlers (`onclick`, `onsubmit`). `style` is refused: the CSP forbids inline
 * styles, use classes.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'style') throw new Error('inline styles are not allowed (CSP)');
      if (name.startsWith('on') && typeof value === 'function') {
        node.addEventListener(name.slice(2), value);
      } else if (value === true) {
        node.setAttribute(name, '');
      } else {
        node.setAttribute(name, String(value));
      }
    }
  }
  append(node, ...children);
  return node;
}

export function append(parent: Node, ...children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `parent`. */
export function replace(parent: Node, ...children: (Child | Child[])[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

/** Text only a screen reader reads. */
export function srOnly(text: string): HTMLSpanElement {
  return el('span', { class: 'visually-hidden' }, text);
}

/** A URL from configuration or the API is used as a link only if it is http(s). */
export function safeHttpUrl(value: string | null | undefined): string | null {
  if (!value) return null;
  try {
    const url = new URL(value, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** The content of `<meta name=...>`, or "" when absent. */
export function meta(name: string): string {
  const node = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`);
  return node?.content.trim() ?? '';
}

export interface Keyed<T> {
  el: Element;
  update(item: T): void;
}

/**
 * Keeps `parent`'s children in step with `items`, by key: an existing element
 * is updated in place (so focus and typed input survive a refresh), new ones
 * are created, missing ones removed, and nodes only move when the order changed.
 * The first `offset` children of `parent` (a caption, a header row) stay first.
 */
export function syncKeyed<T>(
  parent: Element,
  store: Map<string, Keyed<T>>,
  items: readonly T[],
  key: (item: T) => string,
  create: (item: T) => Keyed<T>,
  offset = 0,
): void {
  const seen = new Set<string>();
  const wanted: Element[] = [];
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) continue;
    seen.add(k);
    let entry = store.get(k);
    if (entry) {
      entry.update(item);
    } else {
      entry = create(item);
      store.set(k, entry);
    }
    wanted.push(entry.el);
  }
  for (const [k, entry] of store) {
    if (!seen.has(k)) {
      entry.el.remove();
      store.delete(k);
    }
  }
  wanted.forEach((node, i) => {
    const at = parent.children[offset + i] ?? null;
    if (at !== node) parent.insertBefore(node, at);
  });
}
