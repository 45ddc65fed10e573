/** The console's entry: finish a sign-in the page came back from, then render. */
import { render } from 'preact';
import { App } from './app.tsx';
import { lang } from './i18n.ts';
import { completeSignIn } from './session.ts';

document.documentElement.lang = lang.get() === 'zh' ? 'zh-CN' : 'en';
const root = document.getElementById('app')!;
root.textContent = ''; // the "loading" line the page came with
completeSignIn().then(
  ({ error }) => render(<App signInError={error} />, root),
  (err: unknown) => render(<App signInError={String(err)} />, root),
);
