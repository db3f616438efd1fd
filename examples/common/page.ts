/** Small helpers every page uses. */

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no element #${id}`);
  return el as T;
};

/** Shows the worker-failure banner (each page has #failure, #failure-text and a restart button). */
export function showFailure(message: string): void {
  $('failure-text').textContent = message;
  $('failure').hidden = false;
}

export function hideFailure(): void {
  $('failure').hidden = true;
}

/**
 * Mirrors a page's progress as plain data on window.demoState, for people poking at the console and for the
 * end-to-end tests; the page never reads it back.
 */
export function exposeState<T extends object>(state: T): T {
  (window as unknown as { demoState: T }).demoState = state;
  return state;
}

/** Triggers a download of bytes or text under a file name. */
export function download(name: string, content: BlobPart, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Wires a button to an async handler whose failure goes to `report` rather than becoming an unhandled rejection. */
export function onClick(id: string, handler: () => Promise<void> | void, report: (message: string) => void): void {
  $(id).addEventListener('click', () => {
    Promise.resolve()
      .then(handler)
      .catch((e: unknown) => report(e instanceof Error ? e.message : String(e)));
  });
}
