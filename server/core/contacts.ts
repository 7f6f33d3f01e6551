/**
 * Contacts: a user's list of people, added by hand or by a first private message either way.
 * @module
 */

import { exceptAsker, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { own, type UserState } from "./state.ts";

/** A user's contacts with who is online. */
function contactsFrame(core: Core, u: UserState) {
  const contacts = [...u.contacts].sort().map((name) => ({
    username: name,
    online: ((u) => u !== undefined && core.isOnline(u))(core.users.get(name)),
  }));
  return { type: "contacts_list" as const, contacts, timestamp: core.ts() };
}

/** Adds `contact` to `u`'s contacts if missing, and tells `u`'s connections. */
export function addContact(core: Core, u: UserState, contact: UserState): void {
  if (u.contacts.has(contact.record.name)) return;
  own(u, "contacts").add(contact.record.name);
  core.background(core.store.setContact(u.record.name, contact.record.name, true), "save contact");
  core.publish({ kind: "user", user: u.record.name, frame: contactsFrame(core, u) });
}

/** `contacts`. */
export function contactsCommand(call: UserCall) {
  return contactsFrame(call.core, call.user);
}

/** `add_contact` and `remove_contact`: every device of the user sees the new list. */
export async function changeContactCommand(
  call: UserCall,
  frame: { type: "add_contact" | "remove_contact"; username: string },
) {
  const { core, user: u } = call;
  const add = frame.type === "add_contact";
  const other = core.requireUser(frame.username);
  if (other === u) throw new ChatError("bad_field", "You cannot add yourself as a contact");
  if (add) own(u, "contacts").add(other.record.name);
  else if (u.contacts.has(other.record.name)) own(u, "contacts").delete(other.record.name);
  await core.store.setContact(u.record.name, other.record.name, add);
  const list = contactsFrame(core, u);
  core.publish({ kind: "user", user: u.record.name, frame: list, ...exceptAsker(call) });
  return list;
}
