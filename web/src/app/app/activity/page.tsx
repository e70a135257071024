"use client";

import { useState } from "react";
import { useSubscription } from "urql";
import { ErrorAlert, PageHeading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined } from "@/lib/errors";

const EventsSubscription = graphql(`
  subscription LiveEvents {
    events {
      id
      type
      time
      subject
      data
    }
  }
`);

interface LiveEvent {
  id: string;
  type: string;
  time: string;
  subject?: string | null;
}

const KEEP = 100;

export default function ActivityPage() {
  const [paused, setPaused] = useState(false);
  const [{ data: events, error }] = useSubscription(
    { query: EventsSubscription, pause: paused },
    (previous: LiveEvent[] = [], response) => [response.events, ...previous].slice(0, KEEP),
  );
  return (
    <>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <PageHeading>Activity</PageHeading>
        <button
          type="button"
          onClick={() => setPaused((value) => !value)}
          className="rounded-md border border-slate-300 px-3 py-2 text-sm"
          aria-pressed={paused}
        >
          {paused ? "Resume" : "Pause"}
        </button>
      </div>
      <p className="text-sm text-slate-700">Your team&apos;s events as they happen (the newest first).</p>
      <ErrorAlert errors={fromCombined(error)} />
      <ul aria-label="Live events" aria-live="polite" className="flex flex-col gap-2">
        {(events ?? []).map((event) => (
          <li key={event.id} className="rounded-lg border border-slate-200 bg-white p-3 text-sm">
            <span className="font-mono font-medium">{event.type}</span>{" "}
            <time className="text-slate-600" dateTime={event.time}>
              {new Date(event.time).toLocaleTimeString()}
            </time>
            {event.subject ? <span className="text-slate-600"> · {event.subject}</span> : null}
          </li>
        ))}
      </ul>
      {!events?.length ? <p className="text-sm text-slate-600">Waiting for events…</p> : null}
    </>
  );
}
