// htm bound to preact's h: html`<p>${text}</p>` renders values as text nodes
// and attributes as DOM properties, never as markup, so object fields shown
// this way are escaped by construction. Never use dangerouslySetInnerHTML.
import { h, render } from '../vendor/preact.mjs';
import htm from '../vendor/htm.mjs';

export const html = htm.bind(h);
export { render };
