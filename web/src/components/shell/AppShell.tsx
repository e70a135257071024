"use client";

import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useEffect, useRef, useState, type ReactNode } from "react";
import { Loading, cx } from "@/components/ui";
import { LiveProvider, useLive } from "@/lib/live";
import { loginPath, useSession } from "@/lib/session";
import { TeamProvider, useTeam } from "@/lib/team";
import { CreateTeamDialog } from "./CreateTeamDialog";

export const NAV = [
  { href: "/app", label: "Overview" },
  { href: "/app/team", label: "Team" },
  { href: "/app/billing", label: "Billing" },
  { href: "/app/analytics", label: "Analytics" },
  { href: "/app/llm", label: "Playground" },
  { href: "/app/flags", label: "Flags" },
  { href: "/app/notifications", label: "Notifications" },
  { href: "/app/activity", label: "Activity" },
  { href: "/app/audit", label: "Audit log" },
  { href: "/app/settings", label: "Settings" },
] as const;

/** Every page under /app: signed in, or sent to log-in keeping the page wanted. */
export function AppShell({ children }: { children: ReactNode }) {
  const { status } = useSession();
  const router = useRouter();
  const pathname = usePathname();
  useEffect(() => {
    if (status === "signedOut") router.replace(loginPath(pathname));
    if (status === "loggedOut") router.replace("/login");
  }, [status, router, pathname]);
  if (status !== "signedIn") {
    return (
      <main className="p-6">
        <Loading />
      </main>
    );
  }
  return (
    <TeamProvider
      fallback={
        <main className="p-6">
          <Loading />
        </main>
      }
    >
      <LiveProvider>
        <Frame>{children}</Frame>
      </LiveProvider>
    </TeamProvider>
  );
}

function Frame({ children }: { children: ReactNode }) {
  const pathname = usePathname();
  const [navOpen, setNavOpen] = useState(false);
  const { email } = useTeam();
  // A link followed on a phone closes the menu.
  const [seenPath, setSeenPath] = useState(pathname);
  if (seenPath !== pathname) {
    setSeenPath(pathname);
    setNavOpen(false);
  }
  return (
    <div className="flex min-h-screen flex-col">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:m-2 focus:rounded focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="flex flex-wrap items-center gap-2 border-b border-slate-200 bg-white px-3 py-2 sm:px-6">
        <button
          type="button"
          className="rounded-md border border-slate-300 px-2 py-1 text-sm md:hidden"
          aria-expanded={navOpen}
          aria-controls="main-nav"
          onClick={() => setNavOpen((open) => !open)}
        >
          Menu
        </button>
        <Link href="/app" className="font-semibold text-indigo-700">
          Haunted
        </Link>
        <TeamSwitcher />
        <div className="ml-auto flex items-center gap-2">
          <span className="hidden max-w-[14rem] truncate text-sm text-slate-700 sm:inline" data-email>
            {email}
          </span>
          <Bell />
          <AccountMenu email={email} />
        </div>
      </header>
      <ConnectionBanner />
      <div className="flex flex-1 flex-col md:flex-row">
        <nav
          id="main-nav"
          aria-label="Main"
          className={cx(
            "border-b border-slate-200 bg-white md:block md:w-52 md:border-b-0 md:border-r",
            navOpen ? "block" : "hidden",
          )}
        >
          <ul className="flex flex-col p-2">
            {NAV.map((item) => {
              const active = item.href === "/app" ? pathname === "/app" : pathname.startsWith(item.href);
              return (
                <li key={item.href}>
                  <Link
                    href={item.href}
                    aria-current={active ? "page" : undefined}
                    className={cx(
                      "block rounded-md px-3 py-2 text-sm",
                      active ? "bg-indigo-50 font-medium text-indigo-800" : "text-slate-700 hover:bg-slate-100",
                    )}
                  >
                    {item.label}
                  </Link>
                </li>
              );
            })}
          </ul>
        </nav>
        <main id="main" className="flex min-w-0 flex-1 flex-col gap-6 p-4 sm:p-6">
          {children}
        </main>
      </div>
    </div>
  );
}

function TeamSwitcher() {
  const { teams, current, choose } = useTeam();
  const [creating, setCreating] = useState(false);
  return (
    <div className="flex items-center gap-2">
      {teams.length > 1 ? (
        <>
          <label htmlFor="team-switcher" className="sr-only">
            Team
          </label>
          <select
            id="team-switcher"
            value={current?.id ?? ""}
            onChange={(event) => choose(event.target.value)}
            className="max-w-[10rem] rounded-md border border-slate-300 bg-white px-2 py-1 text-sm"
          >
            {teams.map((team) => (
              <option key={team.id} value={team.id}>
                {team.name}
              </option>
            ))}
          </select>
        </>
      ) : current ? (
        <span className="text-sm text-slate-700">{current.name}</span>
      ) : null}
      <button
        type="button"
        onClick={() => setCreating(true)}
        className="rounded-md border border-slate-300 px-2 py-1 text-sm hover:bg-slate-50"
      >
        Create team
      </button>
      <CreateTeamDialog open={creating} onClose={() => setCreating(false)} />
    </div>
  );
}

/** "Notifications", or "Notifications (N unread)" while there is unread mail. */
export function bellLabel(unread: number | null): string {
  return unread ? `Notifications (${unread} unread)` : "Notifications";
}

function Bell() {
  const { unread } = useLive();
  const router = useRouter();
  return (
    <button
      type="button"
      onClick={() => router.push("/app/notifications")}
      className="relative inline-flex items-center rounded-md border border-slate-300 px-2 py-1 text-sm hover:bg-slate-50"
      aria-label={bellLabel(unread)}
    >
      <svg aria-hidden="true" viewBox="0 0 24 24" className="inline h-4 w-4" fill="none" stroke="currentColor" strokeWidth="2">
        <path d="M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
        <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
      </svg>
      {unread ? (
        <span aria-hidden="true" className="ml-1 rounded-full bg-red-700 px-1.5 text-xs text-white">
          {unread}
        </span>
      ) : null}
    </button>
  );
}

function AccountMenu({ email }: { email: string }) {
  const { logOut } = useSession();
  const [open, setOpen] = useState(false);
  const menuRef = useRef<HTMLUListElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (open) menuRef.current?.querySelector<HTMLElement>('[role="menuitem"]')?.focus();
  }, [open]);
  const close = () => {
    setOpen(false);
    buttonRef.current?.focus();
  };
  return (
    <div className="relative">
      <button
        ref={buttonRef}
        type="button"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls="account-menu"
        onClick={() => setOpen((value) => !value)}
        className="rounded-md border border-slate-300 px-2 py-1 text-sm hover:bg-slate-50"
        aria-label="Account menu"
      >
        <span aria-hidden="true">☰</span>
      </button>
      {open ? (
        <ul
          id="account-menu"
          ref={menuRef}
          role="menu"
          aria-label="Account"
          onKeyDown={(event) => {
            if (event.key === "Escape") close();
          }}
          className="absolute right-0 z-10 mt-1 w-56 rounded-md border border-slate-200 bg-white p-1 shadow-lg"
        >
          <li role="none" className="truncate px-3 py-2 text-xs text-slate-600">
            {email}
          </li>
          <li role="none">
            <button
              type="button"
              role="menuitem"
              onClick={() => {
                setOpen(false);
                void logOut();
              }}
              className="w-full rounded px-3 py-2 text-left text-sm hover:bg-slate-100 focus:bg-slate-100 focus:outline-none"
            >
              Log out
            </button>
          </li>
        </ul>
      ) : null}
    </div>
  );
}

function ConnectionBanner() {
  const { lost } = useLive();
  if (!lost) return null;
  return (
    <div role="status" className="bg-amber-100 px-4 py-2 text-sm text-amber-900">
      Connection lost. Reconnecting…
    </div>
  );
}
