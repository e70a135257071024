"use client";

import { useEffect, useState } from "react";
import { useMutation, useQuery } from "urql";
import { Button, ErrorAlert, Loading, PageHeading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";
import { useLive, type LiveNotification } from "@/lib/live";

const NotificationsQuery = graphql(`
  query NotificationsPage {
    notifications(first: 50) {
      id
      type
      title
      body
      createdAt
      readAt
    }
  }
`);

const MarkRead = graphql(`
  mutation MarkRead($id: ID!) {
    markNotificationRead(id: $id)
  }
`);

const MarkAllRead = graphql(`
  mutation MarkAllRead {
    markAllNotificationsRead
  }
`);

export default function NotificationsPage() {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: NotificationsQuery });
  const [, markRead] = useMutation(MarkRead);
  const [, markAll] = useMutation(MarkAllRead);
  const { onNotification, refreshUnread, connections } = useLive();
  const [live, setLive] = useState<LiveNotification[]>([]);
  const [read, setRead] = useState<Set<string>>(new Set());
  const [errors, setErrors] = useState<ServerError[]>([]);

  useEffect(() => onNotification((notification) => setLive((list) => [notification, ...list])), [onNotification]);
  // Back after a lost connection: `since` replays what came meanwhile, but only
  // once the tab has seen a notification; reading the list again covers the rest.
  useEffect(() => {
    if (connections > 1) reexecute({ requestPolicy: "network-only" });
  }, [connections, reexecute]);

  const known = new Set(live.map((n) => n.id));
  const items = [...live, ...(data?.notifications ?? []).filter((n) => !known.has(n.id))];

  const onRead = async (id: string) => {
    setErrors([]);
    const result = await markRead({ id });
    if (result.error) setErrors(fromCombined(result.error));
    else setRead((ids) => new Set(ids).add(id));
    refreshUnread();
  };
  const onReadAll = async () => {
    setErrors([]);
    const result = await markAll({});
    if (result.error) setErrors(fromCombined(result.error));
    setRead(new Set(items.map((n) => n.id)));
    refreshUnread();
    reexecute({ requestPolicy: "network-only" });
  };

  return (
    <>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <PageHeading>Notifications</PageHeading>
        <Button variant="secondary" onClick={() => void onReadAll()}>
          Mark all read
        </Button>
      </div>
      <ErrorAlert errors={[...fromCombined(error), ...errors]} />
      {!data && fetching ? <Loading /> : null}
      <ul aria-label="Notifications" className="flex flex-col gap-2">
        {items.map((notification) => {
          const unread = !notification.readAt && !read.has(notification.id);
          return (
            <li
              key={notification.id}
              className="flex flex-wrap items-start justify-between gap-2 rounded-lg border border-slate-200 bg-white p-3"
            >
              <div className="min-w-0">
                <p className={unread ? "font-semibold" : ""}>{notification.title}</p>
                {notification.body ? <p className="text-sm text-slate-700">{notification.body}</p> : null}
                <p className="text-xs text-slate-600">
                  <time dateTime={notification.createdAt}>{new Date(notification.createdAt).toLocaleString()}</time>
                  {unread ? " · unread" : ""}
                </p>
              </div>
              {unread ? (
                <Button variant="secondary" onClick={() => void onRead(notification.id)}>
                  Mark read
                </Button>
              ) : null}
            </li>
          );
        })}
      </ul>
      {data && items.length === 0 ? <p className="text-sm text-slate-600">No notifications yet.</p> : null}
    </>
  );
}
