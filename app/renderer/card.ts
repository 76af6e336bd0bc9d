import { el, placeholder } from './dom.js';

/** A card's label/value rows (`<dl>`), each value a placeholder until the first read. */
export class FactList {
  readonly element = el('dl', { class: 'facts' });

  /** Adds a row and returns its value cell, for the card to fill in at each view. */
  add(label: string): HTMLElement {
    const value = el('dd', {}, [placeholder()]);
    this.element.append(el('div', { class: 'fact' }, [el('dt', { text: label }), value]));
    return value;
  }
}

/** A card: a section landmark named by its heading. */
export function card(id: string, title: string, ...content: Node[]): HTMLElement {
  return el('section', { class: 'card', attrs: { 'aria-labelledby': `${id}-title`, id } }, [el('h2', { text: title, attrs: { id: `${id}-title` } }), ...content]);
}
