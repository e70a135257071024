"use client";

import { useState } from "react";
import { useMutation } from "urql";
import { Button, ErrorAlert } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";

const ExportMyData = graphql(`
  mutation ExportMyData {
    exportMyData {
      url
      expiresAt
    }
  }
`);

/** "Export my data": asks for the caller's archive and offers its signed link, which
 * works for a few minutes (the gateway streams the JSON; this origin proxies /exports/). */
export function ExportDataSection() {
  const [{ fetching }, exportMyData] = useMutation(ExportMyData);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [link, setLink] = useState<{ url: string; expiresAt: string } | null>(null);
  const onExport = async () => {
    setErrors([]);
    setLink(null);
    const result = await exportMyData({});
    if (result.error || !result.data) {
      setErrors(fromCombined(result.error));
      return;
    }
    setLink(result.data.exportMyData);
  };
  return (
    <section className="flex flex-col gap-3">
      <h2 className="text-lg font-semibold">Your data</h2>
      <p className="text-sm text-slate-700">
        A JSON file of everything Haunted holds about you: account, sessions, teams, notifications, events, LLM usage and
        audit entries. No passwords or keys are in it.
      </p>
      <ErrorAlert errors={errors} />
      <div className="flex flex-wrap items-center gap-3">
        <Button variant="secondary" disabled={fetching} onClick={() => void onExport()}>
          Export my data
        </Button>
        {link ? (
          <span className="text-sm">
            <a className="text-indigo-800 underline" href={link.url} download="haunted-export.json">
              Download your data
            </a>{" "}
            (the link works until {new Date(link.expiresAt).toLocaleTimeString()})
          </span>
        ) : null}
      </div>
    </section>
  );
}
