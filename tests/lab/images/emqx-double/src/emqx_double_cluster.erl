%% emqx-double (a test double of EMQX 4.4.4, not EMQX): cluster membership.
%% Membership is mnesia's, as with ekka: the schema lives on disc under
%% data/mnesia/<node>, `running_nodes` is running_db_nodes and
%% `stopped_nodes` is db_nodes -- running. Static discovery joins the oldest
%% live seed and retries every 5 s while a seed is missing.
%%
%% Partitions, as ekka 0.8.1.10 with cluster.autoheal = off: a peer that
%% stops answering is down after node.dist_net_ticktime (Erlang's own tick);
%% a heartbeat to every db node every 2-4 s reconnects when the network
%% comes back, mnesia then reports inconsistent_database (logged as ekka
%% logs it) and the two sides stay apart until the nodes of one side restart.
-module(emqx_double_cluster).
-behaviour(gen_server).

-export([start_mnesia/0, start_link/0, info/0, join/1, leave/0, force_leave/1,
         running_nodes/0, prepare_removal/0, reset_schema/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(RETRY_MS, 5000).
-define(SERVER, ?MODULE).
-define(CALL_TIMEOUT, 120000).

%% ---------------------------------------------------------------------------
%% mnesia

start_mnesia() ->
    Dir = mnesia:system_info(directory),
    case filelib:is_regular(filename:join(Dir, "schema.DAT")) of
        true -> ok;
        false -> ok = mnesia:create_schema([node()])
    end,
    ok = mnesia:start(),
    ok = mnesia:wait_for_tables([schema], 30000).

running_nodes() -> lists:sort(mnesia:system_info(running_db_nodes)).

info() ->
    Running = mnesia:system_info(running_db_nodes),
    Stopped = mnesia:system_info(db_nodes) -- Running,
    #{running_nodes => lists:sort(Running), stopped_nodes => lists:sort(Stopped)}.

in_cluster(Node) -> lists:member(Node, mnesia:system_info(db_nodes)).

is_running(Node) ->
    rpc:call(Node, emqx_double, is_running, [], 5000) =:= true.

%% Fresh standalone schema on this node (after leave / failed join), with
%% its own mqtt_app table and default application, as ekka's reboot does.
reset_schema() ->
    stopped = mnesia:stop(),
    ok = mnesia:delete_schema([node()]),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    ok = emqx_double_mgmt:init_table(),
    ok = emqx_double_mgmt:wait_for_table(),
    rebooted().

%% What the restart of the broker's applications after a join / leave
%% changes here: emqx_management's start adds the default application
%% (nothing when the id exists, e.g. in the cluster just joined).
rebooted() ->
    case emqx_double:plugin_active(emqx_management) of
        true -> emqx_double_mgmt:add_default_app();
        false -> ok
    end.

prepare_removal() ->
    stopped = mnesia:stop(),
    ok.

do_join(Node) ->
    stopped = mnesia:stop(),
    ok = mnesia:delete_schema([node()]),
    ok = mnesia:start(),
    case mnesia:change_config(extra_db_nodes, [Node]) of
        {ok, [Node]} ->
            case mnesia:change_table_copy_type(schema, node(), disc_copies) of
                {atomic, ok} -> copy_tables();
                {aborted, {already_exists, schema, _, disc_copies}} -> copy_tables();
                Other -> recover({copy_schema, Other})
            end;
        {ok, []} -> recover({node_down, Node});
        Other -> recover(Other)
    end.

%% The cluster's tables replace this node's (ekka_mnesia:copy_table).
copy_tables() ->
    case emqx_double_mgmt:copy_table() of
        ok ->
            ok = emqx_double_mgmt:wait_for_table(),
            rebooted();
        Error -> recover({copy_table, Error})
    end.

recover(Reason) ->
    catch reset_schema(),
    {error, Reason}.

%% ---------------------------------------------------------------------------
%% API, serialised through the server

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

join(Node) -> gen_server:call(?MODULE, {join, Node}, ?CALL_TIMEOUT).
leave() -> gen_server:call(?MODULE, leave, ?CALL_TIMEOUT).
force_leave(Node) -> gen_server:call(?MODULE, {force_leave, Node}, ?CALL_TIMEOUT).

init([]) ->
    mnesia:subscribe(system),
    net_kernel:monitor_nodes(true),
    heartbeat_later(),
    case emqx_double:conf("cluster.discovery", "manual") of
        "static" ->
            emqx_double:say("autocluster: static discovery, seeds ~0p", [emqx_double:seeds()]),
            self() ! autocluster;
        "manual" -> ok;
        Other ->
            emqx_double:say("[warning] cluster.discovery = ~s is not emulated; "
                            "behaving as manual", [Other])
    end,
    {ok, #{}}.

handle_call({join, Node}, _From, S) -> {reply, handle_join(Node), S};
handle_call(leave, _From, S) -> {reply, handle_leave(), S};
handle_call({force_leave, Node}, _From, S) -> {reply, handle_force_leave(Node), S};
handle_call(_, _From, S) -> {reply, {error, unknown}, S}.

handle_cast({heartbeat, _From}, S) -> {noreply, S};
handle_cast(_, S) -> {noreply, S}.

handle_info(autocluster, S) ->
    case autocluster() of
        done -> emqx_double:say("autocluster: all seeds are in the cluster", []);
        retry -> erlang:send_after(?RETRY_MS, self(), autocluster)
    end,
    {noreply, S};
handle_info({mnesia_system_event, {mnesia_down, N}}, S) when N =/= node() ->
    emqx_double:say("mnesia down: ~s", [N]), {noreply, S};
handle_info({mnesia_system_event, {mnesia_up, N}}, S) when N =/= node() ->
    emqx_double:say("mnesia up: ~s", [N]), {noreply, S};
handle_info({mnesia_system_event, {inconsistent_database, Ctx, N}}, S) ->
    %% ekka_node_monitor logs this at critical level.
    emqx_double:say("[critical] Ekka(Monitor): Network partition detected from node ~s: ~p",
                    [N, Ctx]),
    case emqx_double:conf("cluster.autoheal", "off") of
        Off when Off =:= "off"; Off =:= "false" -> ok;
        _ -> emqx_double:say("[warning] cluster.autoheal is on, but autoheal is not emulated "
                             "by this test double: the partition stays until the nodes of "
                             "one side restart", [])
    end,
    {noreply, S};
handle_info({nodedown, N}, S) ->
    emqx_double:say("node down: ~s", [N]), {noreply, S};
handle_info({nodeup, N}, S) ->
    emqx_double:say("node up: ~s", [N]), {noreply, S};
%% ekka_node_monitor's heartbeat: a cast to every db node every 2-4 s, which
%% (re)connects to a node whose connection was lost.
handle_info(heartbeat, S) ->
    %% Not while mnesia is down or stopping (at `docker stop`): db_nodes would
    %% then be read from the schema on disc, which fails once kernel stops.
    Peers = try mnesia:system_info(is_running) of
                yes -> mnesia:system_info(db_nodes) -- [node()];
                _ -> []
            catch _:_ -> []
            end,
    %% A connection attempt to an unreachable node may take seconds: not here.
    _ = [spawn(fun() -> gen_server:cast({?SERVER, N}, {heartbeat, node()}) end) || N <- Peers],
    heartbeat_later(),
    {noreply, S};
handle_info(_, S) -> {noreply, S}.

heartbeat_later() -> erlang:send_after(rand:uniform(2000) + 2000, self(), heartbeat).

terminate(_, _) -> ok.

handle_join(Node) when Node =:= node() -> ignore;
handle_join(Node) ->
    case {in_cluster(Node), is_running(Node)} of
        {true, _} -> {error, {already_in_cluster, Node}};
        {false, false} -> {error, {node_down, Node}};
        {false, true} ->
            emqx_double:say("joining the cluster of ~s", [Node]),
            Result = do_join(Node),
            resubscribe(),
            Result
    end.

handle_leave() ->
    case mnesia:system_info(running_db_nodes) -- [node()] of
        [] -> {error, node_not_in_cluster};
        Others ->
            stopped = mnesia:stop(),
            Left = lists:any(fun(N) ->
                                     case rpc:call(N, mnesia, del_table_copy, [schema, node()], 30000) of
                                         {atomic, ok} -> true;
                                         _ -> false
                                     end
                             end, Others),
            ok = mnesia:delete_schema([node()]),
            ok = mnesia:create_schema([node()]),
            ok = mnesia:start(),
            ok = emqx_double_mgmt:init_table(),
            ok = emqx_double_mgmt:wait_for_table(),
            ok = rebooted(),
            resubscribe(),
            case Left of
                true -> ok;
                false -> {error, {failed_to_leave, Others}}
            end
    end.

handle_force_leave(Node) when Node =:= node() -> ignore;
handle_force_leave(Node) ->
    case {in_cluster(Node), lists:member(Node, mnesia:system_info(running_db_nodes))} of
        {false, _} -> {error, node_not_in_cluster};
        {true, true} ->
            ok = rpc:call(Node, ?MODULE, prepare_removal, [], 30000),
            R = mnesia:del_table_copy(schema, Node),
            rpc:call(Node, ?MODULE, reset_schema, [], 30000),
            atomic_ok(R);
        {true, false} ->
            atomic_ok(mnesia:del_table_copy(schema, Node))
    end.

atomic_ok({atomic, ok}) -> ok;
atomic_ok({aborted, Reason}) -> {error, Reason}.

resubscribe() -> mnesia:subscribe(system).

%% One round of static discovery. `done` when every seed runs in our cluster.
autocluster() ->
    Seeds = [S || S <- emqx_double:seeds(), S =/= node()],
    Alive = [S || S <- Seeds, net_adm:ping(S) =:= pong, is_running(S)],
    maybe_join(Alive),
    case Seeds -- mnesia:system_info(running_db_nodes) of
        [] -> done;
        Missing ->
            emqx_double:say("autocluster: discovered nodes outside cluster or down: ~0p; "
                            "retrying in ~p ms", [Missing, ?RETRY_MS]),
            retry
    end.

maybe_join([]) -> ok;
maybe_join(Alive) ->
    Known = mnesia:system_info(db_nodes),
    case Alive -- Known of
        [] -> ok;
        _ ->
            Ages = lists:sort([{emqx_double:started_at(), node()}
                               | [{rpc:call(N, emqx_double, started_at, [], 5000), N}
                                  || N <- Alive]]),
            case [N || {T, N} <- Ages, is_integer(T)] of
                [Oldest | _] when Oldest =/= node() ->
                    case lists:member(Oldest, Known) of
                        true -> ok;
                        false ->
                            emqx_double:say("autocluster: joining with ~s", [Oldest]),
                            R = handle_join(Oldest),
                            emqx_double:say("autocluster: join ~s: ~0p", [Oldest, R])
                    end;
                _ -> ok
            end
    end.
