import { Script } from 'node:vm';
import { describe, it, expect } from 'vitest';
import { graphiqlAssets, graphiqlPage } from './graphiql.js';

const assetBase = '/graphql/assets';
const page = graphiqlPage({ endpoint: '/graphql', assetBase });

/** Every src=/href= value in the page. */
function pageRefs(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)\s*=\s*["']?([^"'\s>]+)/gi)].map((m) => m[1]!);
}

describe('graphiql', () => {
  it('renders a page that only references same-origin asset paths', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<title>OneCard GraphQL</title>');
    expect(page).toContain('data-endpoint="/graphql"');
    const refs = pageRefs(page);
    expect(refs.sort()).toEqual([`${assetBase}/graphiql.css`, `${assetBase}/graphiql.js`]);
    for (const ref of refs) expect(ref.startsWith(`${assetBase}/`)).toBe(true);
  });

  it('escapes interpolated values', () => {
    const html = graphiqlPage({ endpoint: '/g"><script>x</script>', assetBase: '/a"b' });
    expect(html).not.toContain('<script>x');
    expect(html).toContain('data-endpoint="/g&#34;&#62;&#60;script&#62;x&#60;/script&#62;"');
    expect(html).toContain('href="/a&#34;b/graphiql.css"');
  });

  it('builds every asset the page references, with no cross-origin URLs', async () => {
    const started = performance.now();
    const assets = await graphiqlAssets();
    console.log(`graphiql build took ${Math.round(performance.now() - started)} ms`);

    for (const ref of pageRefs(page)) {
      const asset = assets.get(ref.slice(assetBase.length + 1));
      expect(asset, ref).toBeDefined();
      expect(asset!.contentType).toMatch(ref.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect(asset!.body.length).toBeGreaterThan(10_000);
    }

    const css = assets.get('graphiql.css')!.body.toString('utf8');
    const cssUrls = [...css.matchAll(/url\(\s*["']?([^"')]+)/g)].map((m) => m[1]!.trim());
    expect(cssUrls.length).toBeGreaterThan(0); // the fonts
    for (const url of cssUrls) {
      expect(url).not.toMatch(/^(https?:)?\/\//i);
      if (!url.startsWith('data:') && !url.startsWith('#')) expect(assets.has(url.replace(/^\.\//, '')), url).toBe(true);
    }

    // GraphiQL's "React 15 is unsupported" error text mentions CDNs by name; it is a
    // message, not a request, so drop it before looking for real CDN references.
    const js = assets
      .get('graphiql.js')!
      .body.toString('utf8')
      .replace('If you are using a CDN source (jsdelivr, unpkg, etc)', '');
    for (const bad of ['import("http', "import('http", 'importScripts("http', '//cdn', 'unpkg.com', 'jsdelivr']) {
      expect(js, bad).not.toContain(bad);
    }
    // Parses as a classic (non-module) script, as the page loads it.
    expect(() => new Script(js)).not.toThrow();
  });

  it('caches the build', async () => {
    const [a, b] = await Promise.all([graphiqlAssets(), graphiqlAssets()]);
    expect(a).toBe(b);
    expect(await graphiqlAssets()).toBe(a);
  });
});
