/** The one inline style of these pages; the Content-Security-Policy allows it by its hash (http/security-headers.ts). */
export const OAUTH_PAGE_STYLE = `body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1.2rem;margin-right:.5rem}.error{color:#b00020}li{margin:.3rem 0}`;

/** The plain server-rendered pages of the authorization server: no script, no other origin. */
export function oauthPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>OneCard · ${title}</title>
<style>${OAUTH_PAGE_STYLE}</style>
</head><body><h1>${title}</h1>${body}</body></html>`;
}
