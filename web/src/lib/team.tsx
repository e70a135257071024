"use client";

import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { useQuery } from "urql";
import { graphql } from "@/gql";

export const MeQuery = graphql(`
  query Me {
    me {
      id
      email
      permissions
      memberships {
        role
        team {
          id
          name
        }
      }
    }
  }
`);

export interface TeamChoice {
  id: string;
  name: string;
  role: string;
}

interface TeamContextValue {
  email: string;
  userId: string;
  teams: TeamChoice[];
  current: TeamChoice | null;
  choose: (teamId: string) => void;
  refetch: () => void;
}

const TeamContext = createContext<TeamContextValue | null>(null);
const STORAGE_KEY = "haunted.team";

function stored(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The signed-in user and the team the pages act in (kept per browser). */
export function TeamProvider({ children, fallback }: { children: ReactNode; fallback: ReactNode }) {
  const [{ data }, reexecute] = useQuery({ query: MeQuery });
  const [chosen, setChosen] = useState<string | null>(() => (typeof window === "undefined" ? null : stored()));
  const choose = useCallback((teamId: string) => {
    setChosen(teamId);
    try {
      localStorage.setItem(STORAGE_KEY, teamId);
    } catch {
      /* storage may be unavailable */
    }
  }, []);
  const refetch = useCallback(() => reexecute({ requestPolicy: "network-only" }), [reexecute]);
  const me = data?.me;
  const value = useMemo<TeamContextValue | null>(() => {
    if (!me) return null;
    const teams = me.memberships.map((m) => ({ id: m.team.id, name: m.team.name, role: m.role }));
    const current = teams.find((t) => t.id === chosen) ?? teams[0] ?? null;
    return { email: me.email, userId: me.id, teams, current, choose, refetch };
  }, [me, chosen, choose, refetch]);
  if (!value) return <>{fallback}</>;
  return <TeamContext.Provider value={value}>{children}</TeamContext.Provider>;
}

export function useTeam(): TeamContextValue {
  const value = useContext(TeamContext);
  if (!value) throw new Error("useTeam outside TeamProvider");
  return value;
}

/** The current team's id, for operations that take `teamId`. */
export function useTeamId(): string | null {
  return useTeam().current?.id ?? null;
}
