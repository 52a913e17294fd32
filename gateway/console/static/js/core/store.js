// IndexedDB database `sealhub`: the enrolled key (non-extractable CryptoKey objects are
// stored as they are, never exported), the refresh token and small preferences. Nothing
// of it goes to cookies or localStorage.

const DB_NAME = "sealhub";
const STORES = ["identity", "tokens", "prefs"];
let opening = null;

function database() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        for (const name of STORES) {
          if (!request.result.objectStoreNames.contains(name)) {
            request.result.createObjectStore(name);
          }
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

async function run(store, mode, action) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(store, mode);
    const request = action(transaction.objectStore(store));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

export const idb = {
  get: (store, key) => run(store, "readonly", (s) => s.get(key)),
  put: (store, key, value) => run(store, "readwrite", (s) => s.put(value, key)),
  delete: (store, key) => run(store, "readwrite", (s) => s.delete(key)),
};
