// PDF pages drawn into <canvas> by pdf.js, from bytes the console fetched with DPoP. Under
// the console's CSP: no eval (isEvalSupported: false), no WebAssembly decoders, and the
// worker started by the console itself from a Trusted Types script URL of its own assets.
import { html, useEffect, useRef, useState } from "./html.js";
import { addMessages, t } from "./i18n.js";
import { scriptURL } from "./trusted.js";

addMessages({
  zh: { "pdf.page": "第 {n} 页，共 {total} 页", "pdf.loading": "正在显示文件…", "pdf.failed": "无法显示此 PDF：{reason}", "pdf.more": "其余 {count} 页请下载后查看。" },
  en: { "pdf.page": "Page {n} of {total}", "pdf.loading": "Drawing the document…", "pdf.failed": "This PDF cannot be shown: {reason}", "pdf.more": "Download the file to see the other {count} pages." },
});

const MAX_PAGES = 30;
let library = null;

/** pdf.js with the console's one worker (started on first use, shared by every caller). */
async function pdfjs() {
  if (!library) {
    library = import("../../vendor/pdfjs/pdf.min.mjs").then((lib) => {
      const worker = new Worker(scriptURL("vendor/pdfjs/pdf.worker.min.mjs"), { type: "module" });
      lib.GlobalWorkerOptions.workerPort = worker;
      return lib;
    });
  }
  return library;
}

/** Open *bytes* (an ArrayBuffer, not consumed) under the console's rules: no eval, no
 * WebAssembly, no XFA. */
async function openPdf(bytes) {
  const lib = await pdfjs();
  return lib.getDocument({
    data: new Uint8Array(bytes.slice(0)), // pdf.js transfers its copy to the worker
    isEvalSupported: false,
    useWasm: false,
    enableXfa: false,
    disableAutoFetch: true,
  });
}

/** Draw *page* (a pdf.js page) into a new canvas at *scale* CSS pixels per PDF point. */
async function drawPage(page, scale, ratio = 1) {
  const viewport = page.getViewport({ scale: scale * ratio });
  const canvas = document.createElement("canvas");
  canvas.width = Math.floor(viewport.width);
  canvas.height = Math.floor(viewport.height);
  await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
  return canvas;
}

/**
 * One page (0-based *pageIndex*, the last one when beyond) of *bytes* as a PNG blob: URL at
 * *scale* (the caller revokes it): for previews drawn under something else (the seal's box).
 */
export async function renderPage(bytes, pageIndex, { scale = 2 } = {}) {
  const task = await openPdf(bytes);
  try {
    const pdf = await task.promise;
    const page = await pdf.getPage(Math.min(pageIndex + 1, pdf.numPages));
    const canvas = await drawPage(page, scale);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    return URL.createObjectURL(blob);
  } finally {
    await task.destroy();
  }
}

/** Draw every page (up to MAX_PAGES) of *bytes* (an ArrayBuffer, not consumed). */
export function PdfView({ bytes, label }) {
  const box = useRef(null);
  const [state, setState] = useState({ pages: 0, drawn: 0, error: null });
  useEffect(() => {
    if (!bytes) return undefined;
    let cancelled = false;
    let task = null;
    (async () => {
      const opened = await openPdf(bytes);
      if (cancelled) {
        opened.destroy();
        return;
      }
      task = opened;
      const pdf = await task.promise;
      const total = pdf.numPages;
      setState({ pages: total, drawn: 0, error: null });
      const width = Math.max(box.current?.clientWidth ?? 600, 280);
      for (let n = 1; n <= Math.min(total, MAX_PAGES) && !cancelled; n += 1) {
        const page = await pdf.getPage(n);
        const base = page.getViewport({ scale: 1 });
        const scale = Math.min(width / base.width, 2);
        const ratio = window.devicePixelRatio || 1;
        const canvas = await drawPage(page, scale, ratio);
        if (cancelled) break;
        canvas.style.width = `${Math.floor(canvas.width / ratio)}px`;
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", t("pdf.page", { n, total }));
        canvas.dataset.page = String(n);
        canvas.dataset.rendered = "true";
        box.current?.append(canvas);
        setState((s) => ({ ...s, drawn: n }));
      }
    })().catch((error) => {
      if (!cancelled) setState((s) => ({ ...s, error }));
    });
    return () => {
      cancelled = true;
      task?.destroy();
      if (box.current) box.current.replaceChildren();
    };
  }, [bytes]);
  return html`<div>
    ${state.error
      ? html`<p class="note note-error" role="alert">${t("pdf.failed", { reason: state.error.message })}</p>`
      : state.drawn === 0
        ? html`<p class="loading" role="status" aria-busy="true">${t("pdf.loading")}</p>`
        : null}
    <div class="pdf-pages" ref=${box} aria-label=${label}></div>
    ${state.pages > MAX_PAGES ? html`<p class="hint">${t("pdf.more", { count: state.pages - MAX_PAGES })}</p>` : null}
  </div>`;
}
