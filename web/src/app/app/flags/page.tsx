"use client";

import { useQuery } from "urql";
import { Cell, Table } from "@/components/Table";
import { ErrorAlert, Loading, PageHeading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined } from "@/lib/errors";
import { useTeamId } from "@/lib/team";

const FlagsQuery = graphql(`
  query FlagsPage($teamId: ID) {
    flags(teamId: $teamId) {
      name
      description
      enabled
    }
  }
`);

export default function FlagsPage() {
  const teamId = useTeamId();
  const [{ data, error, fetching }] = useQuery({ query: FlagsQuery, variables: { teamId } });
  return (
    <>
      <PageHeading>Flags</PageHeading>
      <p className="text-sm text-slate-700">Every feature flag and whether it is on for you in this team.</p>
      <ErrorAlert errors={fromCombined(error)} />
      {!data && fetching ? <Loading /> : null}
      {data ? (
        <Table name="Flags" columns={["Name", "State", "Description"]}>
          {data.flags.map((flag) => (
            <tr key={flag.name}>
              <Cell header>
                <code>{flag.name}</code>
              </Cell>
              <Cell>
                <span className={flag.enabled ? "font-medium text-green-800" : "text-slate-600"}>
                  {flag.enabled ? "On" : "Off"}
                </span>
              </Cell>
              <Cell>{flag.description ?? ""}</Cell>
            </tr>
          ))}
        </Table>
      ) : null}
    </>
  );
}
