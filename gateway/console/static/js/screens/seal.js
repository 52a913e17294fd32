// 用印: signed-off documents waiting for my department's seal. The preview draws the draft's
// page with the seal image where the gateway will place it (one SVG in PDF points, so no
// inline style is needed); 用印 sends a sealhub-seal+jwt over the draft's digest and, for a
// console key with a passkey, the step-up assertion bound to that JWS.
import { html, useState, useEffect } from "../core/html.js";
import { api } from "../core/api.js";
import { signJws } from "../core/jws.js";
import { stepUp } from "../core/passkey.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, Loading, ErrorNote, CardList, DocumentCard, Urgency, formatTime, notify, usePages } from "../core/ui.js";
import { navigate } from "../core/router.js";
import { renderPage } from "../core/pdf.js";
import { checkedDraft, Chain, useOfficialNames } from "./todo.js";

addMessages({
  zh: {
    "nav.seal": "用印",
    "sealing.title": "用印",
    "sealing.empty": "没有等待本单位用印的公文",
    "sealing.number": "文号：{number}",
    "sealing.drafter": "拟稿人：{name}",
    "sealing.created": "拟稿时间：{time}",
    "sealing.open": "用印",
    "sealing.back": "返回用印列表",
    "sealing.preview": "用印预览：第{page}页",
    "sealing.previewAlt": "第{page}页，红框处为印章位置",
    "sealing.noSeal": "本单位还没有有效印章，不能用印。请联系平台管理员申请。",
    "sealing.previewFailed": "无法显示文稿页面；印章位置仍按红框所示。",
    "sealing.apply": "用印并分发",
    "sealing.applying": "正在用印…",
    "sealing.applied": "已用印，分发给 {n} 个单位",
    "sealing.digestMismatch": "下载的文稿与签发的文稿摘要不一致，不能用印。",
    "sealing.passkeyNote": "用印须用通行密钥确认本人操作。",
    "sealing.passkeyCancelled": "未完成通行密钥验证，未用印。",
  },
  en: {
    "nav.seal": "Seal",
    "sealing.title": "Seal",
    "sealing.empty": "Nothing is waiting for your department's seal",
    "sealing.number": "Number: {number}",
    "sealing.drafter": "Drafter: {name}",
    "sealing.created": "Drafted: {time}",
    "sealing.open": "Seal",
    "sealing.back": "Back to the list",
    "sealing.preview": "Preview: page {page}",
    "sealing.previewAlt": "Page {page}; the red frame is where the seal goes",
    "sealing.noSeal": "Your department has no active seal yet: ask a platform admin for one.",
    "sealing.previewFailed": "The draft page cannot be drawn; the red frame still shows where the seal goes.",
    "sealing.apply": "Seal and dispatch",
    "sealing.applying": "Sealing…",
    "sealing.applied": "Sealed and dispatched to {n} units",
    "sealing.digestMismatch": "The downloaded draft does not match the signed-off digest: nothing was sealed.",
    "sealing.passkeyNote": "Sealing is confirmed with your passkey.",
    "sealing.passkeyCancelled": "The passkey check was not completed: nothing was sealed.",
  },
});

async function awaitingSeal(cursor) {
  return api.get("/v1/documents", { box: "awaiting_seal", ...(cursor ? { cursor } : {}) });
}

/** A blob: URL of a DPoP-protected image, revoked when the component goes. */
export function useImageUrl(path) {
  const [url, setUrl] = useState(null);
  useEffect(() => {
    if (!path) return undefined;
    let made = null;
    let live = true;
    api.bytes(path).then(
      (bytes) => {
        made = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
        if (live) setUrl(made);
        else URL.revokeObjectURL(made);
      },
      () => setUrl(null),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [path]);
  return url;
}

function SealList() {
  const [items, failure, more, load] = usePages(awaitingSeal);
  useEffect(() => {
    load();
  }, []);
  return html`<${Page} title=${t("sealing.title")}>
    <${CardList}
      items=${items}
      failure=${failure}
      more=${more}
      load=${load}
      empty=${t("sealing.empty")}
      card=${(doc) => html`<${DocumentCard} key=${doc.id} doc=${doc} idPrefix="seal" href=${`#/seal/${doc.id}`} open=${t("sealing.open")}>
        <span>${t("sealing.number", { number: doc.doc_number })}</span>
        <span>${t("sealing.drafter", { name: doc.drafter.name })}</span>
        <span>${t("sealing.created", { time: formatTime(doc.created_at) })}</span>
      </${DocumentCard}>`}
    />
  </${Page}>`;
}

/** The page as an image with the seal drawn over its box (PDF points, origin bottom left). */
function SealPreview({ bytes, seal }) {
  const [page, setPage] = useState(null);
  const sealUrl = useImageUrl(seal.image_url);
  useEffect(() => {
    let made = null;
    let live = true;
    renderPage(bytes, seal.page).then(
      (url) => {
        made = url;
        if (live) setPage(url);
        else URL.revokeObjectURL(made);
      },
      () => live && setPage(false),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [bytes, seal.page]);
  const [w, h] = seal.page_size;
  const [x1, y1, x2, y2] = seal.box;
  const number = seal.page + 1;
  return html`<figure class="seal-preview">
    <svg viewBox=${`0 0 ${w} ${h}`} width="100%" role="img" aria-label=${t("sealing.previewAlt", { page: number })}>
      <rect x="0" y="0" width=${w} height=${h} fill="#ffffff" />
      ${page ? html`<image href=${page} x="0" y="0" width=${w} height=${h} />` : null}
      ${sealUrl ? html`<image href=${sealUrl} x=${x1} y=${h - y2} width=${x2 - x1} height=${y2 - y1} opacity="0.85" />` : null}
      <rect x=${x1} y=${h - y2} width=${x2 - x1} height=${y2 - y1} fill="none" stroke="#b00020" stroke-width="1.5" stroke-dasharray="4 3" />
    </svg>
    <figcaption>${t("sealing.preview", { page: number })}</figcaption>
    ${page === false ? html`<p class="note note-error" role="alert">${t("sealing.previewFailed")}</p>` : null}
  </figure>`;
}

function SealDocument({ id }) {
  const [item, setItem] = useState(null);
  const [doc, setDoc] = useState(null);
  const [draft, setDraft] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [hint, setHint] = useState(null);
  const nameOf = useOfficialNames(doc ? doc.sender : null);

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const found = await api.get(`/v1/documents/${id}`);
        let listed = null;
        let cursor = null;
        do {
          const page = await awaitingSeal(cursor);
          listed = page.items.find((i) => i.id === id) || null;
          cursor = page.next_cursor;
        } while (!listed && cursor);
        if (!live) return;
        setDoc(found);
        setItem(listed);
        const checked = await checkedDraft(id, found.draft_sha256);
        if (live) setDraft(checked);
      } catch (error) {
        if (live) setFailure(error);
      }
    })();
    return () => {
      live = false;
    };
  }, [id]);

  const apply = async () => {
    setBusy(true);
    setFailure(null);
    setHint(null);
    try {
      const signature = await signJws("sealhub-seal+jwt", { document: id, draft_sha256: doc.draft_sha256 });
      const body = { signature };
      const assertion = await stepUp(signature);
      if (assertion) body.passkey = assertion;
      const sent = await api.post(`/v1/documents/${id}/seal`, body, { idempotencyKey: crypto.randomUUID() });
      notify(t("sealing.applied", { n: sent.deliveries }));
      navigate(`#/documents/${id}`);
    } catch (error) {
      if (error && error.name === "NotAllowedError") setHint(t("sealing.passkeyCancelled"));
      else setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  const seal = item && item.seal;
  const back = html`<a class="button" href="#/seal">${t("sealing.back")}</a>`;
  return html`<${Page} title=${doc ? doc.title : t("sealing.title")} actions=${back}>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${doc ? html`<p class="doc-line"><${Urgency} value=${doc.urgency} /><span>${t("sealing.number", { number: doc.doc_number })}</span></p>` : null}
    <div class="doc-layout">
      <section class="draft" aria-label=${t("sealing.title")}>
        ${draft === null
          ? failure ? null : html`<${Loading} />`
          : !draft.intact
            ? html`<p class="note note-error" role="alert">${t("sealing.digestMismatch")}</p>`
            : seal
              ? html`<${SealPreview} bytes=${draft.bytes} seal=${seal} />`
              : html`<p class="note note-warn" role="note">${t("sealing.noSeal")}</p>`}
      </section>
      <aside class="doc-side">
        ${seal && draft && draft.intact
          ? html`<section aria-labelledby="seal-apply-heading">
              <h2 id="seal-apply-heading">${t("sealing.apply")}</h2>
              <p class="hint">${t("sealing.passkeyNote")}</p>
              ${hint ? html`<p class="field-error" role="alert">${hint}</p>` : null}
              <button type="button" class="button button-primary" disabled=${busy} onClick=${apply}>${t("sealing.apply")}</button>
              ${busy ? html`<p aria-live="polite">${t("sealing.applying")}</p>` : null}
            </section>`
          : null}
        ${doc ? html`<${Chain} doc=${doc} nameOf=${nameOf} />` : null}
      </aside>
    </div>
  </${Page}>`;
}

export function SealScreen({ params }) {
  return params.document ? html`<${SealDocument} id=${params.document} />` : html`<${SealList} />`;
}
