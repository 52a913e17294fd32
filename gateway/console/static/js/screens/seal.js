// 用印: signed-off documents waiting for my department's seal. The preview draws the draft's
// page with the seal image where the gateway will place it (one SVG in PDF points, so no
// inline style is needed); 用印 sends a sealhub-seal+jwt over the draft's digest and, for a
// console key with a passkey, the step-up assertion bound to that JWS.
import { html, useState, useEffect } from "../core/html.js";
import { api } from "../core/api.js";
import { signJws } from "../core/jws.js";
import { stepUp } from "../core/passkey.js";
import { t, addMessages } from "../core/i18n.js";
import { Page, ErrorNote, Urgency, formatTime, notify } from "../core/ui.js";
import { useRoute, navigate } from "../core/router.js";
import { renderPageImage } from "./document.js";
import { checkedDraft, Chain, useOfficialNames } from "./todo.js";

addMessages({
  zh: {
    "seal.title": "用印",
    "seal.empty": "没有等待本单位用印的公文",
    "seal.loading": "正在加载…",
    "seal.more": "加载更多",
    "seal.number": "文号：{number}",
    "seal.drafter": "拟稿人：{name}",
    "seal.created": "拟稿时间：{time}",
    "seal.open": "用印",
    "seal.back": "返回用印列表",
    "seal.preview": "用印预览：第{page}页",
    "seal.previewAlt": "第{page}页，红框处为印章位置",
    "seal.noSeal": "本单位还没有有效印章，不能用印。请联系平台管理员申请。",
    "seal.apply": "用印并分发",
    "seal.applying": "正在用印…",
    "seal.applied": "已用印，分发给 {n} 个单位",
    "seal.digestMismatch": "下载的文稿与签发的文稿摘要不一致，不能用印。",
    "seal.passkeyNote": "用印须用通行密钥确认本人操作。",
    "seal.passkeyCancelled": "未完成通行密钥验证，未用印。",
  },
  en: {
    "seal.title": "Seal",
    "seal.empty": "Nothing is waiting for your department's seal",
    "seal.loading": "Loading…",
    "seal.more": "Load more",
    "seal.number": "Number: {number}",
    "seal.drafter": "Drafter: {name}",
    "seal.created": "Drafted: {time}",
    "seal.open": "Seal",
    "seal.back": "Back to the list",
    "seal.preview": "Preview: page {page}",
    "seal.previewAlt": "Page {page}; the red frame is where the seal goes",
    "seal.noSeal": "Your department has no active seal yet: ask a platform admin for one.",
    "seal.apply": "Seal and dispatch",
    "seal.applying": "Sealing…",
    "seal.applied": "Sealed and dispatched to {n} units",
    "seal.digestMismatch": "The downloaded draft does not match the signed-off digest: nothing was sealed.",
    "seal.passkeyNote": "Sealing is confirmed with your passkey.",
    "seal.passkeyCancelled": "The passkey check was not completed: nothing was sealed.",
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
  const [items, setItems] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [failure, setFailure] = useState(null);
  const load = async (more = false) => {
    try {
      const page = await awaitingSeal(more ? cursor : null);
      setItems(more && items ? [...items, ...page.items] : page.items);
      setCursor(page.next_cursor);
    } catch (error) {
      setFailure(error);
    }
  };
  useEffect(() => {
    load();
  }, []);
  return html`<${Page} title=${t("seal.title")}>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${items === null
      ? html`<p class="muted">${t("seal.loading")}</p>`
      : items.length === 0
        ? html`<p class="empty">${t("seal.empty")}</p>`
        : html`<ul class="cards">
            ${items.map((doc) => {
              const headingId = `seal-${doc.id}`;
              return html`<li class="card" key=${doc.id} data-document=${doc.id}>
                <article aria-labelledby=${headingId}>
                  <h3 id=${headingId}>${doc.title}</h3>
                  <p class="meta">
                    <${Urgency} value=${doc.urgency} />
                    <span>${t("seal.number", { number: doc.doc_number })}</span>
                    <span>${t("seal.drafter", { name: doc.drafter.name })}</span>
                    <span>${t("seal.created", { time: formatTime(doc.created_at) })}</span>
                  </p>
                  <a class="button primary" href=${`#/seal/${doc.id}`} aria-describedby=${headingId}>${t("seal.open")}</a>
                </article>
              </li>`;
            })}
          </ul>`}
    ${cursor ? html`<button type="button" class="secondary" onClick=${() => load(true)}>${t("seal.more")}</button>` : null}
  </${Page}>`;
}

/** The page as an image with the seal drawn over its box (PDF points, origin bottom left). */
function SealPreview({ bytes, seal }) {
  const [page, setPage] = useState(null);
  const sealUrl = useImageUrl(seal.image_url);
  useEffect(() => {
    let made = null;
    let live = true;
    renderPageImage(bytes, seal.page).then((image) => {
      made = image.url;
      if (live) setPage(image);
      else URL.revokeObjectURL(made);
    });
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [bytes, seal.page]);
  const [w, h] = seal.page_size;
  const [x1, y1, x2, y2] = seal.box;
  const number = seal.page + 1;
  return html`<figure class="seal-preview">
    <svg viewBox=${`0 0 ${w} ${h}`} width="100%" role="img" aria-label=${t("seal.previewAlt", { page: number })}>
      <rect x="0" y="0" width=${w} height=${h} fill="#ffffff" />
      ${page ? html`<image href=${page.url} x="0" y="0" width=${w} height=${h} />` : null}
      ${sealUrl ? html`<image href=${sealUrl} x=${x1} y=${h - y2} width=${x2 - x1} height=${y2 - y1} opacity="0.85" />` : null}
      <rect x=${x1} y=${h - y2} width=${x2 - x1} height=${y2 - y1} fill="none" stroke="#b00020" stroke-width="1.5" stroke-dasharray="4 3" />
    </svg>
    <figcaption>${t("seal.preview", { page: number })}</figcaption>
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
      notify(t("seal.applied", { n: sent.deliveries }));
      navigate(`#/documents/${id}`);
    } catch (error) {
      if (error && error.name === "NotAllowedError") setHint(t("seal.passkeyCancelled"));
      else setFailure(error);
    } finally {
      setBusy(false);
    }
  };

  const seal = item && item.seal;
  const back = html`<a class="button secondary" href="#/seal">${t("seal.back")}</a>`;
  return html`<${Page} title=${doc ? doc.title : t("seal.title")} actions=${back}>
    ${failure ? html`<${ErrorNote} error=${failure} />` : null}
    ${doc ? html`<p class="meta"><${Urgency} value=${doc.urgency} /><span>${t("seal.number", { number: doc.doc_number })}</span></p>` : null}
    <div class="review">
      <section class="draft" aria-label=${t("seal.title")}>
        ${draft === null
          ? html`<p class="muted">${t("seal.loading")}</p>`
          : !draft.intact
            ? html`<p class="error" role="alert">${t("seal.digestMismatch")}</p>`
            : seal
              ? html`<${SealPreview} bytes=${draft.bytes} seal=${seal} />`
              : html`<p class="note" role="note">${t("seal.noSeal")}</p>`}
      </section>
      <aside class="review-side">
        ${seal && draft && draft.intact
          ? html`<section aria-labelledby="seal-apply-heading">
              <h3 id="seal-apply-heading">${t("seal.apply")}</h3>
              <p class="hint">${t("seal.passkeyNote")}</p>
              ${hint ? html`<p class="field-error" role="alert">${hint}</p>` : null}
              <button type="button" class="primary" disabled=${busy} onClick=${apply}>${t("seal.apply")}</button>
              ${busy ? html`<p aria-live="polite">${t("seal.applying")}</p>` : null}
            </section>`
          : null}
        ${doc ? html`<${Chain} doc=${doc} nameOf=${nameOf} />` : null}
      </aside>
    </div>
  </${Page}>`;
}

export function SealScreen() {
  const { params } = useRoute();
  return params && params.document ? html`<${SealDocument} id=${params.document} />` : html`<${SealList} />`;
}
