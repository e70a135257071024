"use client";

import { useState } from "react";
import { useQuery } from "urql";
import { Cell, Table } from "@/components/Table";
import { Button, ErrorAlert, Loading, PageHeading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined } from "@/lib/errors";
import { useTeam } from "@/lib/team";

const AuditQuery = graphql(`
  query AuditLog($teamId: ID!, $after: String) {
    auditLog(teamId: $teamId, first: 50, after: $after) {
      entries {
        id
        action
        actorId
        target
        time
      }
      nextCursor
    }
    team(id: $teamId) {
      id
      members {
        userId
        email
      }
    }
  }
`);

export default function AuditPage() {
  const { current } = useTeam();
  const teamId = current?.id ?? "";
  // Pages already read (their cursors), newest first: "Older" reads the next.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  return (
    <>
      <PageHeading>Audit log</PageHeading>
      <p className="text-sm text-slate-700">Who did what in {current?.name ?? "this team"}, newest first.</p>
      {cursors.map((after, index) => (
        <AuditPageRows
          key={after ?? "first"}
          teamId={teamId}
          after={after}
          last={index === cursors.length - 1}
          onOlder={(cursor) => setCursors((list) => [...list, cursor])}
        />
      ))}
    </>
  );
}

function AuditPageRows({
  teamId,
  after,
  last,
  onOlder,
}: {
  teamId: string;
  after: string | null;
  last: boolean;
  onOlder: (cursor: string) => void;
}) {
  const [{ data, error, fetching }] = useQuery({ query: AuditQuery, variables: { teamId, after }, pause: !teamId });
  const emails = new Map((data?.team?.members ?? []).map((member) => [member.userId, member.email]));
  const next = data?.auditLog.nextCursor;
  return (
    <>
      <ErrorAlert errors={fromCombined(error)} />
      {!data && fetching ? <Loading /> : null}
      {data ? (
        <Table
          name={after ? "Audit log (older)" : "Audit log"}
          columns={["Time", "Actor", "Action", "Target"]}
          empty={data.auditLog.entries.length === 0 ? "Nothing recorded yet." : undefined}
        >
          {data.auditLog.entries.map((entry) => (
            <tr key={entry.id}>
              <Cell header>
                <time dateTime={entry.time}>{new Date(entry.time).toLocaleString()}</time>
              </Cell>
              <Cell>{entry.actorId ? (emails.get(entry.actorId) ?? entry.actorId) : "system"}</Cell>
              <Cell>
                <code>{entry.action}</code>
              </Cell>
              <Cell>{entry.target ?? ""}</Cell>
            </tr>
          ))}
        </Table>
      ) : null}
      {last && next ? (
        <div>
          <Button variant="secondary" onClick={() => onOlder(next)}>
            Older entries
          </Button>
        </div>
      ) : null}
    </>
  );
}
